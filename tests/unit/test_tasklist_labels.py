"""opslabs.tasklist_labels names each task-list checkbox after its item (axe rule `label`, WCAG 4.1.2)."""

import re

import markdown
import yaml


def convert(text, extensions=("pymdownx.tasklist", "opslabs.tasklist_labels")):
    md = markdown.Markdown(extensions=list(extensions), extension_configs={"pymdownx.tasklist": {"custom_checkbox": True}})
    return md.convert(text)


def labels(html):
    return re.findall(r'<input type="checkbox" aria-label="([^"]*)"', html)


def test_without_the_extension_the_checkbox_has_no_name():
    html = convert("- [ ] Configure the upstream\n", extensions=("pymdownx.tasklist",))
    assert '<input type="checkbox" disabled/>' in html
    assert labels(html) == []


def test_each_checkbox_is_named_after_its_own_item_text():
    html = convert(
        "- [ ] Run `nginx -t` and read *the* [\"log\"](log.md)\n"
        "- [x] Drain a backend\n"
        "    - [ ] nested item\n"
        "- not a task\n")
    assert labels(html) == ['Run nginx -t and read the &quot;log&quot;', "Drain a backend", "nested item"]
    assert html.count("<input") == 3
    assert 'aria-label="Drain a backend" disabled checked/>' in html  # the state is kept


def test_loose_list_items_are_named_after_their_first_paragraph():
    html = convert("1. [ ] First step\n\n    More about it.\n\n2. [X] Second step\n")
    assert labels(html) == ["First step", "Second step"]


def test_raw_html_in_an_item_keeps_its_text_only():
    html = convert("- [ ] Press <kbd>Ctrl</kbd>+<kbd>C</kbd> to stop it\n")
    assert labels(html) == ["Press Ctrl+C to stop it"]


def test_the_site_uses_it_with_the_tasklist_extension(repo):
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)
    config = yaml.load((repo / "mkdocs.yml").read_text(), Loader=Loader)
    names = [next(iter(entry)) if isinstance(entry, dict) else entry for entry in config["markdown_extensions"]]
    assert {"pymdownx.tasklist", "opslabs.tasklist_labels"} <= set(names)
