"""Generated tables inside hand-written Markdown: the text between ``<!-- TAG:NAME -->`` and
``<!-- /TAG:NAME -->`` belongs to the script that writes it (results tables, speed tables).

The one home for this helper: ``scripts/results_tables.py`` (tag ``results``) and
``scripts/bench_speed.py`` (tag ``speed``) use it.
"""
import re
from typing import Dict, List, Tuple

from .atomic import atomic_write


def replace_blocks(text: str, tag: str, blocks: Dict[str, str]) -> Tuple[str, List[str]]:
    """``text`` with the body of each ``<!-- tag:NAME -->`` ... ``<!-- /tag:NAME -->`` block named in
    ``blocks`` replaced by ``blocks[NAME]``; and the names that were found."""
    done = []
    for name, body in blocks.items():
        pattern = re.compile(rf'(<!-- {tag}:{re.escape(name)} -->\n)(?:.*?\n)?(<!-- /{tag}:{re.escape(name)} -->)', re.S)
        text, n = pattern.subn(lambda m: m.group(1) + body + '\n' + m.group(2), text)
        if n:
            done.append(name)
    return text, done


def rewrite_files(targets: List[Tuple[str, Dict[str, str]]], tag: str) -> List[str]:
    """Fill the ``tag`` blocks of each (path, blocks) in ``targets``: all files or none.

    Returns one message per rewritten file. Raises ValueError (one line) naming the first file that
    lacks one of its blocks, and then nothing is written.
    """
    rewritten = []
    for path, blocks in targets:
        with open(path) as f:
            text, done = replace_blocks(f.read(), tag, blocks)
        missing = [name for name in blocks if name not in done]
        if missing:   # e.g. a README given as --docs: write nothing rather than half the tables
            raise ValueError(f"{path}: no block {', '.join(missing)} to fill "
                             f"(<!-- {tag}:<block> --> ... <!-- /{tag}:<block> -->)")
        rewritten.append((path, text, done))
    for path, text, _ in rewritten:
        atomic_write(path, lambda f, text=text: f.write(text.encode()))
    return [f"rewrote {', '.join(done)} in {path}" for path, _, done in rewritten]
