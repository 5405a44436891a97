from polysaga.serve import serve
from sales.bootstrap import build

serve("sales", build)
