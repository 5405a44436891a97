from catalog.bootstrap import build
from polysaga.serve import serve

serve("catalog", build)
