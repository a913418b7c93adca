"""Faster, same-output versions of Material for MkDocs template fragments, applied as MkDocs loads them.

Material's `partials/nav-item.html` looks for a section's index page by looping over all of
the section's children, for every section on every page, even for a section that
`navigation.prune` then draws as a single link. With one section per area that is
pages x pages loop steps: at 1,000 tasks (1,222 pages) 1.5 million, the largest part of the
build. `selectattr | first` stops at the first index page (a section's first child here), and
yields the same page as the loop (the first child whose `is_index` is true, else none), so
the HTML does not change (tests/unit/test_theme_patches.py builds with and without).

A patch whose text is not found (another Material version) is left out: the page renders
with the original template, only slower. Zensical runs no plugins and has its own templates.
"""

from __future__ import annotations

import jinja2

INDEX_LOOP = """\
    {% set _ = namespace(index = none) %}
    {% if "navigation.indexes" in features %}
      {% for item in nav_item.children %}
        {% if item.is_index and _.index is none %}
          {% set _.index = item %}
        {% endif %}
      {% endfor %}
    {% endif %}
    {% set index = _.index %}
"""
INDEX_FIRST = """\
    {% if "navigation.indexes" in features %}
      {% set index = nav_item.children | selectattr("is_index") | first | default(none) %}
    {% else %}
      {% set index = none %}
    {% endif %}
"""
PATCHES: dict[str, list[tuple[str, str]]] = {"partials/nav-item.html": [(INDEX_LOOP, INDEX_FIRST)]}


class PatchingLoader(jinja2.BaseLoader):
    """Wraps the theme's loader; replaces known fragments in the templates named in PATCHES."""

    def __init__(self, inner: jinja2.BaseLoader, patches: dict[str, list[tuple[str, str]]] = PATCHES):
        self.inner = inner
        self.patches = patches
        self.applied: set[str] = set()

    def get_source(self, environment: jinja2.Environment, template: str):
        source, filename, uptodate = self.inner.get_source(environment, template)
        for old, new in self.patches.get(template, []):
            if old in source:
                source = source.replace(old, new)
                self.applied.add(template)
        return source, filename, uptodate

    def list_templates(self) -> list[str]:
        return self.inner.list_templates()


def patch_environment(env: jinja2.Environment) -> PatchingLoader:
    if not isinstance(env.loader, PatchingLoader):
        env.loader = PatchingLoader(env.loader)
    return env.loader
