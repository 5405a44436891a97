from order_view.bootstrap import build
from polysaga.serve import serve

serve("order-view", build)
