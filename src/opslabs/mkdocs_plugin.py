"""Thin MkDocs adapter: adds the rendered pages, the package's stylesheet and the navigation; watches labs/ and macros/."""

from __future__ import annotations

from pathlib import Path

from mkdocs.config import config_options
from mkdocs.config.base import Config
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin
from mkdocs.structure.files import File, Files

from opslabs.blocks.report import read_report, report_path_for
from opslabs.errors import UserError
from opslabs.load import load_catalog
from opslabs.navigation import navigation
from opslabs.render import ASSETS, DEFAULT_TEMPLATES, STYLESHEET, previously_rendered, render
from opslabs.store.results import DEFAULT_RESULTS, read_results
from opslabs.theme_patches import patch_environment




class OpslabsConfig(Config):
    labs = config_options.Type(str, default="labs")
    templates = config_options.Type(str, default="macros")
    results = config_options.Type(str, default=str(DEFAULT_RESULTS))


class OpslabsPlugin(BasePlugin[OpslabsConfig]):
    def on_config(self, config):
        root = Path(config.config_file_path).parent
        self.labs_dir = root / self.config.labs
        self.templates_dir = root / self.config.templates
        self.results_path = root / self.config.results
        self.report_path = report_path_for(self.labs_dir)
        try:
            self.catalog = load_catalog(self.labs_dir, policy=None)  # the site runs no lab: no privilege policy
        except UserError as err:
            raise PluginError(f"opslabs: the knowledge base is invalid:\n{err}") from None
        config.nav = navigation(self.catalog, config.nav or [])  # the head `opslabs render` wrote is replaced
        if STYLESHEET not in config.extra_css:
            config.extra_css.append(STYLESHEET)
        return config

    def on_files(self, files: Files, config) -> Files:
        try:
            pages = render(self.catalog, self.templates_dir, read_results(self.results_path), read_report(self.report_path))
        except UserError as err:
            raise PluginError(f"opslabs: {err}") from None
        for stale in previously_rendered(Path(config.docs_dir)) - set(pages):  # left by `opslabs render`
            existing = files.get_file_from_path(stale)
            if existing is not None:
                files.remove(existing)
        for path, text in pages.items():
            existing = files.get_file_from_path(path)
            if existing is not None:  # also written to disk by `opslabs render`: ours wins
                files.remove(existing)
            files.append(File.generated(config, path, content=text))
        from opslabs.store.results import PUBLISHED_NAME, published_results

        published = published_results(self.results_path)  # the results store travels with the site
        if published is not None:
            existing = files.get_file_from_path(PUBLISHED_NAME)
            if existing is not None:
                files.remove(existing)
            files.append(File.generated(config, PUBLISHED_NAME, content=published))
        for asset in sorted(ASSETS.iterdir()):
            path = f"assets/{asset.name}"
            if files.get_file_from_path(path) is None:
                files.append(File.generated(config, path, abs_src_path=str(asset)))
        return files

    def on_env(self, env, config, files):
        patch_environment(env)  # Material's sidebar in linear time, same HTML (theme_patches.py)
        return env

    def on_serve(self, server, config, builder):
        for folder in (self.labs_dir, self.templates_dir, DEFAULT_TEMPLATES, ASSETS):
            if folder.is_dir():
                server.watch(str(folder))
        return server

