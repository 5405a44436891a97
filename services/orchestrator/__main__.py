from orchestrator.bootstrap import build
from polysaga.serve import serve

serve("orchestrator", build)
