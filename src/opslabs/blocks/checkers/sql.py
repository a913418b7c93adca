"""SQL: PostgreSQL's own parser (pglast) by default; other dialects with sqlglot (`sql dialect=mysql`)."""

from __future__ import annotations

from opslabs.blocks.checkers.base import Checker, Finding, Item, Outcome


class SqlChecker(Checker):
    name = "SQL"
    version = "pglast-8.8-sqlglot-30.31-2"

    def judge(self, item: Item) -> Outcome:
        dialect = item.attrs.get("dialect", "postgres")
        if dialect in ("postgres", "postgresql"):
            import pglast
            from pglast.parser import ParseError as PgParseError

            try:
                pglast.parse_sql(item.text)
            except PgParseError as err:
                return Outcome("PostgreSQL parser (pglast)", (Finding(_line(item.text, err.args[1] if len(err.args) > 1 else None), str(err.args[0])),))
            return Outcome("PostgreSQL parser (pglast)")
        import logging

        import sqlglot
        from sqlglot.errors import ErrorLevel, ParseError, TokenError

        logging.getLogger("sqlglot").setLevel(logging.ERROR)  # its fallback warnings: reported below instead

        try:
            sqlglot.Dialect.get_or_raise(dialect)
            statements = sqlglot.parse(item.text, read=dialect, error_level=ErrorLevel.RAISE)
        except (ValueError, KeyError):
            return Outcome("SQL", (Finding(0, f"unknown SQL dialect {dialect!r} (postgres, mysql, sqlite, …)"),))
        except ParseError as err:
            first = err.errors[0] if err.errors else {}
            return Outcome(f"{dialect} parser (sqlglot)", (Finding(first.get("line") or 0, first.get("description") or str(err)),))
        except TokenError as err:  # an unterminated quote or identifier: the tokenizer gives up before parsing
            return Outcome(f"{dialect} parser (sqlglot)", (Finding(0, str(err)[:300]),))
        # sqlglot keeps statements it has no grammar for (CREATE USER, GRANT …) as opaque commands:
        # it cannot judge those, so the block is not reported as validated.
        opaque = [s for s in statements if isinstance(s, sqlglot.exp.Command)]
        if opaque:
            return Outcome(f"{dialect} parser (sqlglot)", unchecked=f"sqlglot has no {dialect} grammar for "
                           f"{opaque[0].this} statements; the block is shown as written, not parsed")
        return Outcome(f"{dialect} parser (sqlglot)")


def _line(text: str, location: int | None) -> int:
    return text.count("\n", 0, location) + 1 if location else 0
