from payment.bootstrap import build
from polysaga.serve import serve

serve("payment", build)
