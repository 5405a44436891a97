from inventory.bootstrap import build
from polysaga.serve import serve

serve("inventory", build)
