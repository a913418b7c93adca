"""Markdown extension: give each task-list checkbox of pymdownx.tasklist an accessible name.

pymdownx.tasklist writes `<label class="task-list-control"><input type="checkbox" disabled/>…</label> Item text`:
the label holds no text, so a screen reader announces an unnamed checkbox (WCAG 4.1.2, axe rule `label`).
This names each checkbox after its item's own text (not its nested lists). List it with pymdownx.tasklist
in mkdocs.yml: `markdown_extensions: [..., pymdownx.tasklist, opslabs.tasklist_labels]` (it runs after it
whatever the order: tree processors run by priority).
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as etree

from markdown import Extension, Markdown
from markdown.treeprocessors import Treeprocessor
from markdown.util import HTML_PLACEHOLDER_RE

CHECKBOX = re.compile(r'<input type="checkbox"')


class TasklistLabels(Treeprocessor):
    def __init__(self, md: Markdown):
        super().__init__(md)

    def run(self, root: etree.Element) -> None:
        for li in root.iter("li"):
            if "task-list-item" not in li.get("class", "").split():
                continue
            # The checkbox is at the start of the item, or of its first paragraph in a loose list.
            holder = li if li.text and HTML_PLACEHOLDER_RE.match(li.text) else next(iter(li), None)
            if holder is None or not holder.text:
                continue
            match = HTML_PLACEHOLDER_RE.match(holder.text)
            if match is None:
                continue
            index = int(match.group(1))
            checkbox = self.md.htmlStash.rawHtmlBlocks[index]
            if not isinstance(checkbox, str) or not CHECKBOX.search(checkbox) or "aria-label" in checkbox:
                continue
            name = self.item_text(holder, holder.text[match.end():])
            if name:
                self.md.htmlStash.rawHtmlBlocks[index] = CHECKBOX.sub(
                    lambda m: f'{m.group(0)} aria-label="{html.escape(name, quote=True)}"', checkbox, count=1)

    def item_text(self, holder: etree.Element, head: str) -> str:
        parts = [head]
        for child in holder:
            if self.md.is_block_level(child.tag):  # a nested list or paragraph is not this item's name
                break
            parts.extend(child.itertext())
            parts.append(child.tail or "")
        text = HTML_PLACEHOLDER_RE.sub("", "".join(parts))  # raw HTML and icons have no text here
        return " ".join(text.split())


class TasklistLabelsExtension(Extension):
    def extendMarkdown(self, md: Markdown) -> None:
        # After the inline patterns (20), which turn the item's Markdown into elements; before prettify (10).
        md.treeprocessors.register(TasklistLabels(md), "opslabs-tasklist-labels", 15)
        md.registerExtension(self)


def makeExtension(**kwargs) -> TasklistLabelsExtension:
    return TasklistLabelsExtension(**kwargs)
