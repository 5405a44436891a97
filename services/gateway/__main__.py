from gateway.bootstrap import build
from polysaga.serve import serve

serve("gateway", build)
