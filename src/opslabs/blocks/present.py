"""Blocks as the page shows them: a plain fence for Material, the lab's text for `from=` blocks,
and under each block one line that says how it was checked (from the stored report)."""

from __future__ import annotations

import hashlib
import re

from opslabs.blocks.extract import Block

ICONS = {"executed": ":material-play-circle:", "validated": ":material-check-circle:",
         "fragment": ":material-puzzle-outline:", "unchecked": ":material-minus-circle-outline:", "failed": ":material-close-circle:"}


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def current(blocks: list[Block], judged: dict[int, dict]) -> dict[int, dict]:
    """The report's entries that still describe the blocks as they are now."""
    texts = {b.index: text_hash(b.text) for b in blocks}
    return {i: entry for i, entry in judged.items() if texts.get(i) == entry.get("sha")}


def note(block: Block, judged: dict | None, lab: dict | None = None) -> str:
    if not judged or judged.get("sha") != text_hash(block.text):
        return ""  # not checked yet, or checked before it changed: say nothing rather than something stale
    status = judged["status"]
    if status == "executed":
        words = f"Executed in CI: {judged['reason']}"
        if lab and lab.get("state") in ("passed", "failed"):  # what the last verification found
            words += f" ({lab['text'][0].lower()}{lab['text'][1:]})"
    elif status == "validated":
        words = f"Checked by {judged['checker']}"
    elif status == "failed":
        words = f"Failed its check by {judged['checker']}: {judged['findings'][0]['message'] if judged['findings'] else ''}"
    elif status == "fragment":
        words = "Fragment of a larger file: not checked on its own"
    else:
        words = f"Not checked: {judged['reason']}"
    words = words.replace("<", "&lt;").replace("*", "\\*").replace("_", "\\_")
    return f'<small class="opslabs-check opslabs-{status}">{ICONS[status]} {words}</small>'


def present(text: str, blocks: list[Block], judged: dict[int, dict] | None = None, lab: dict | None = None) -> str:
    """The field's Markdown with every fence rewritten for the site; `lab` is the lab's last
    verification (render.lab_status), named under the blocks the lab executes."""
    judged = judged or {}
    lines = text.split("\n")
    for block in sorted(blocks, key=lambda b: b.body_lines[0], reverse=True):
        start, end = block.body_lines
        pad = " " * block.indent
        marker = re.match(r"\s*(`{3,}|~{3,})", lines[start])
        ticks = marker.group(1) if marker else "```"
        while ticks in block.text:
            ticks += ticks[0]
        body = [pad + line if line.strip() else "" for line in block.text.split("\n")]
        closed = end < len(lines) and re.match(r"\s*(`{3,}|~{3,})\s*$", lines[end])
        replacement = [pad + ticks + block.fence.rendered_info, *body, pad + ticks]
        line = note(block, judged.get(block.index), lab)
        if line:
            replacement += ["", pad + line]
        lines[start:end + 1 if closed else end] = replacement
    return "\n".join(lines)
