"""HTML of the learner's and trainer's pages: Jinja2 templates (autoescaped) and the lab's
step text rendered with Python-Markdown, the library MkDocs renders the site with."""

from __future__ import annotations

from functools import lru_cache

import jinja2
import markdown

# The site's extensions (mkdocs.yml) that mean something without the Material theme's CSS and JS.
EXTENSIONS = ["abbr", "admonition", "attr_list", "def_list", "footnotes", "tables", "pymdownx.superfences",
              "pymdownx.details", "pymdownx.keys"]


def step_html(text: str) -> str:
    """A step's Markdown as the site shows it. Raw HTML in a lab file is escaped: the page is
    the learner's, and a lab arrives from a pull request."""
    md = markdown.Markdown(extensions=EXTENSIONS)
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    return md.convert(text or "")


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("opslabs.web", "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined)


def page(template: str, **context) -> str:
    return environment().get_template(template).render(**context)
