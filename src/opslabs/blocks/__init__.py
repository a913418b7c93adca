"""Code blocks of guides and overviews: extraction with source lines, one checker per language, a cache, coverage."""
