"""The query options of ``clarifai-connect search`` and ``export``, and how hits are printed.

The options are the readable keys of :mod:`clarifai_connect.queries` (``--concept dog``,
``--near 40.1,-3.2 --within-km 100``, ``--like ./dog.jpg`` …); ``--query query.yaml``
holds the same keys, and options given beside it add to it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import click

from .queries import SearchQuery, merge

__all__ = ["hit_rows", "print_hits", "query_from_options", "query_options"]

_REPEATED = "(repeatable: each is one more condition)"


def query_options(command):
    """The search options, in the order ``--help`` shows them."""
    options = [
        click.option("--query", "query_file", type=click.Path(dir_okay=False, exists=True),
                     help="A YAML file of the search (the keys below, e.g. concept: dog)."),
        click.option("--concept", "concepts", multiple=True, metavar="NAME",
                     help=f"Labelled with this concept (id or name; a,b: either) {_REPEATED}."),
        click.option("--not-concept", "not_concepts", multiple=True, metavar="NAME",
                     help=f"Not labelled with this concept {_REPEATED}."),
        click.option("--metadata", "metadata", multiple=True, metavar="KEY=VALUE",
                     help="Metadata holding this value (JSON values; dotted keys nest), "
                          "e.g. --metadata breed=\"Saint Bernard\"."),
        click.option("--type", "types", multiple=True,
                     type=click.Choice(["image", "video", "text", "audio"]),
                     help="Inputs of this media type (repeat for either)."),
        click.option("--near", metavar="LAT,LON", help="Inputs placed near this point "
                                                       "(with --within-km)."),
        click.option("--within-km", type=click.FloatRange(min=0, min_open=True),
                     help="The radius of --near, in kilometres."),
        click.option("--like", metavar="PATH|URL", help="Rank by likeness to this image."),
        click.option("--like-text", metavar="TEXT", help="Rank by likeness to this text."),
        click.option("--like-input", metavar="ID", help="Rank by likeness to this input."),
        click.option("--top-k", type=click.IntRange(min=1), help="At most this many hits."),
        click.option("--metric", type=click.Choice(["cosine", "euclidean"]), default=None,
                     help="How likeness is measured [default: cosine]."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


_OPTION_KEYS = ("concepts", "not_concepts", "metadata", "types", "near", "within_km", "like",
                "like_text", "like_input", "top_k", "metric")


def query_from_options(params: dict[str, Any], datasets: Iterable[str] = ()
                       ) -> SearchQuery | None:
    """The query of the options given (None when no query option was), ``--query`` first."""
    from .plugins import parse_option_pairs

    given = {k: params.get(k) for k in _OPTION_KEYS if params.get(k) not in (None, (), "")}
    datasets = [d for d in datasets if d]
    if not given and not params.get("query_file") and not datasets:
        return None
    readable = {"concept": list(given.get("concepts", ())),
                "not_concept": list(given.get("not_concepts", ())),
                "metadata": parse_option_pairs(given.get("metadata", ()), "--metadata"),
                "type": list(given.get("types", ())), "dataset": datasets,
                **{k: given[k] for k in ("near", "within_km", "like", "like_text",
                                         "like_input", "top_k", "metric") if k in given}}
    from_options = SearchQuery.from_mapping(
        {k: v for k, v in readable.items() if v not in ([], {}, None)}, where="options")
    if params.get("query_file"):
        return merge(SearchQuery.from_file(params["query_file"]), from_options)
    return from_options


def hit_rows(hits: Iterable[Any]) -> list[dict[str, Any]]:
    """One plain dict per hit: id, score, rank, media type, labels, datasets, metadata."""
    from .client.search import hit_summary

    return [{"rank": n, **hit_summary(hit)} for n, hit in enumerate(hits, start=1)]


def print_hits(rows: list[dict[str, Any]], as_json: bool) -> None:
    """A table (rank, id, score, type, labels) or JSON lines."""
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, sort_keys=True))
        return
    if not rows:
        click.echo("no hits")
        return
    width = max(len(r["id"]) for r in rows)
    click.echo(f"{'rank':>4}  {'id':<{width}}  {'score':>7}  {'type':<5}  labels")
    for row in rows:
        click.echo(f"{row['rank']:>4}  {row['id']:<{width}}  {row['score']:>7.4f}  "
                   f"{row['type']:<5}  {', '.join(row['labels'])}".rstrip())
