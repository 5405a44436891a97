from polysaga.cli.main import app

app()
