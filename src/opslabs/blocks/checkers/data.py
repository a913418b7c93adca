"""Data and configuration formats with a parser in the standard library or a small well-kept one:
JSON, TOML, INI, HCL (python-hcl2), Nginx (crossplane), Markdown (opslabs' own lint), JavaScript (node --check)."""

from __future__ import annotations

import configparser
import json
import tomllib

from opslabs.blocks.checkers.base import Checker, Finding, Item, Outcome, run_tool, temp_files


class JsonChecker(Checker):
    name = "JSON parser"

    def judge(self, item: Item) -> Outcome:
        try:
            json.loads(item.text)
        except ValueError as err:
            return Outcome(self.name, (Finding(getattr(err, "lineno", 0), str(err)),))
        return Outcome(self.name)


class TomlChecker(Checker):
    name = "TOML parser"

    def judge(self, item: Item) -> Outcome:
        try:
            tomllib.loads(item.text)
        except tomllib.TOMLDecodeError as err:
            return Outcome(self.name, (Finding(getattr(err, "lineno", 0) or 0, str(err)),))
        return Outcome(self.name)


class IniChecker(Checker):
    name = "INI parser"

    def judge(self, item: Item) -> Outcome:
        text = item.text if item.language != "properties" else "[properties]\n" + item.text
        parser = configparser.ConfigParser(interpolation=None, strict=True, allow_no_value=True)
        try:
            parser.read_string(text)
        except configparser.Error as err:
            return Outcome(self.name, (Finding(getattr(err, "lineno", 0) or 0, str(err).splitlines()[0]),))
        return Outcome(self.name)


class HclChecker(Checker):
    name = "HCL parser (python-hcl2)"
    version = "8.1.4-1"

    def judge(self, item: Item) -> Outcome:
        import hcl2

        try:
            hcl2.loads(item.text)
        except Exception as err:  # noqa: BLE001 - lark raises many kinds; each is a parse failure
            line = getattr(err, "line", 0) or 0
            return Outcome(self.name, (Finding(line if isinstance(line, int) else 0, str(err).splitlines()[0][:300]),))
        return Outcome(self.name)


class NginxChecker(Checker):
    name = "Nginx parser (crossplane)"
    version = "0.5.8-strict-2"

    def judge(self, item: Item) -> Outcome:
        import crossplane

        text = item.text
        top_level = {line.split()[0] for line in text.splitlines() if line.strip() and not line.startswith((" ", "\t", "#", "}"))}
        wrapped = bool(top_level) and not top_level & {"http", "events", "stream", "user", "worker_processes"}
        tmp, (path,) = temp_files([("http {\n" + text + "\n}\n") if wrapped else text], ".conf")
        with tmp:
            # strict: an unknown (misspelt) directive is an error, not silently accepted
            # map/geo/types/split_clients blocks hold data (key value pairs), not directives
            parsed = crossplane.parse(str(path), single=True, strict=True, check_ctx=True, check_args=True, comments=False,
                                      ignore=("map", "geo", "types", "split_clients", "charset_map"))
        findings = [Finding(max(0, (e.get("line") or 0) - (1 if wrapped else 0)), e["error"].replace(str(path), "block"))
                    for config in parsed["config"] for e in config["errors"]]
        return Outcome(self.name, tuple(findings))


class MarkdownChecker(Checker):
    name = "Markdown lint"

    def judge(self, item: Item) -> Outcome:
        from opslabs.markdown_lint import lint_markdown

        return Outcome(self.name, tuple(Finding(line, message) for line, message in lint_markdown(item.text)))


class JavaScriptChecker(Checker):
    name = "node --check"

    def judge(self, item: Item) -> Outcome:
        tmp, (path,) = temp_files([item.text], ".mjs")
        with tmp:
            done = run_tool(["node", "--check", str(path)])
        if done.returncode == 0:
            return Outcome(self.name)
        error = done.stderr.decode("utf-8", "replace")
        line = 0
        for row in error.splitlines():
            if str(path) in row and ":" in row:
                try:
                    line = int(row.rsplit(":", 1)[1])
                except ValueError:
                    pass
        message = next((r for r in error.splitlines() if "Error" in r), error.strip()[:300])
        return Outcome(self.name, (Finding(line, message),))
