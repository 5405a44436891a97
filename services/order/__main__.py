from order.bootstrap import build
from polysaga.serve import serve

serve("order", build)
