from notification.bootstrap import build
from polysaga.serve import serve

serve("notification", build)
