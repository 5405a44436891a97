from polysaga.serve import serve
from user.bootstrap import build

serve("user", build)
