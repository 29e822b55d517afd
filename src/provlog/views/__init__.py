"""Stage 4, views: the report, the lineage picture, diff, tail and watch."""
