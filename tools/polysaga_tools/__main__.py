from polysaga_tools.main import app

app()
