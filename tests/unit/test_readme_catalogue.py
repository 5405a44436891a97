"""The README's event catalogue is generated from the declaration and must stay in step."""

from __future__ import annotations

from pathlib import Path

from polysaga.events.declaration import catalogue_markdown

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_catalogue_matches_the_declaration() -> None:
    text = README.read_text()
    start = text.index("<!-- catalogue:start -->") + len("<!-- catalogue:start -->")
    end = text.index("<!-- catalogue:end -->")
    assert text[start:end].strip() == catalogue_markdown().strip()
