"""The json format: the exported document (docs/export.md), read by ``sampler.py``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .document import build_document


class JsonExporter:
    def __init__(self, dtype: str = "float32", known_words: bool = True):
        self.dtype, self.known_words = dtype, known_words

    def export(self, trained: Any, path: Path) -> None:
        document = build_document(trained, "json", dtype=self.dtype, known_words=self.known_words)
        path.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
