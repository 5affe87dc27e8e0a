"""The json format: the exported document (docs/export.md), read by ``sampler.py``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import JsonOptions
from .document import build_document


class JsonExporter:
    def __init__(self, options: JsonOptions | None = None):
        self.options = options or JsonOptions()

    def export(self, trained: Any, path: Path) -> None:
        document = build_document(trained, "json", dtype=self.options.dtype, known_words=self.options.known_words)
        path.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
