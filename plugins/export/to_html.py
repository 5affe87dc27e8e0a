"""The html format: one self-contained page that makes words offline, from file://.

The page is ``page/page.html`` with the exported document (the json format's, weights in
float16 by default) and ``page/letras.js``, the sampler, written into it: no framework, no
CDN, nothing fetched.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from pathlib import Path
from typing import Any

from . import HtmlOptions
from .document import build_document


class HtmlExporter:
    def __init__(self, options: HtmlOptions | None = None):
        self.options = options or HtmlOptions()

    def export(self, trained: Any, path: Path) -> None:
        document = build_document(trained, "html", dtype=self.options.dtype, known_words=self.options.known_words)
        document["sampler"]["seed"] = self.options.seed
        path.write_text(render(document), encoding="utf-8")


def render(document: dict[str, Any]) -> str:
    """The page for ``document``."""
    page = resources.files(__package__).joinpath("page")
    template = page.joinpath("page.html").read_text(encoding="utf-8")
    script = page.joinpath("letras.js").read_text(encoding="utf-8")
    # "</" would end the script element early; "<\/" is the same JSON string
    model = json.dumps(document, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    return (template.replace("/*TITLE*/", html.escape(document["name"]))
            .replace("/*VERSION*/", html.escape(document["letras_version"]))
            .replace("/*MODEL*/", model)
            .replace("/*SCRIPT*/", script.strip()))
