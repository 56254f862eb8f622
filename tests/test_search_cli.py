"""``clarifai-connect search`` (options, ``--query query.yaml``, table and JSON), exporting the
hits of a search (CLI and ``clarifai_connect.export(query=…)``) read back by the matching
reader with the same ids, scores and ranks, and the readable query form's errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import clarifai_connect
from clarifai_connect.cli import cli
from clarifai_connect.errors import ConfigError
from clarifai_connect.queries import SearchQuery, load_query

from .export_support import read_all
from .test_search_server import pictures, zoo  # noqa: F401 (fixtures)
from .test_server_embeddings import encoded, scene


def run(server, app, command: str, *args: str):
    return CliRunner().invoke(cli, [command, "--app", f"{app.user_id}/{app.app_id}",
                                    "--base-url", server.base_url, "--pat", server.keys[0],
                                    *args])


def json_hits(result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def test_search_options(clarifai_server, zoo, tmp_path):  # noqa: F811
    table = run(clarifai_server, zoo, "search", "--concept", "dog")
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split() == ["rank", "id", "score", "type", "labels"]
    assert [line.split()[1] for line in lines[1:]] == ["dog1", "dog2", "txt1"]
    assert "1.0000  image  dog" in lines[1]

    def ids(*args: str) -> list[str]:
        return [h["id"] for h in json_hits(run(clarifai_server, zoo, "search", "--json", *args))]

    assert ids("--concept", "Kitty") == ["cat1"]  # by name
    assert ids("--type", "image", "--not-concept", "dog") == ["cat1", "box1", "gone"]
    assert ids("--concept", "dog,cat", "--type", "image") == ["dog1", "dog2", "cat1"]
    assert ids("--metadata", "breed=Saint Bernard") == ["dog1"]
    assert ids("--metadata", "vet.ok=false") == ["dog2"]
    assert ids("--dataset", "train") == ["dog1", "cat1"]
    assert ids("--near", "40,-29", "--within-km", "100") == ["dog1"]
    assert ids("--near", "40,-29", "--within-km", "250") == ["dog1", "dog2"]
    assert ids("--type", "text", "--top-k", "1") == ["txt1"]
    picture = tmp_path / "rex.jpg"
    picture.write_bytes(encoded(scene(10), "JPEG"))
    liked = json_hits(run(clarifai_server, zoo, "search", "--json", "--like", str(picture)))
    assert liked[0]["id"] == "dog1" and liked[0]["rank"] == 1
    assert liked[0]["score"] > liked[1]["score"]
    assert ids("--like-text", "a dog sleeping in the sun") == ["txt1", "txt2"]
    assert ids("--like-input", "cat1", "--metric", "euclidean")[0] == "cat1"
    assert json_hits(run(clarifai_server, zoo, "search", "--json", "--concept", "dog",
                         "--top-k", "1"))[0]["metadata"]["breed"] == "Saint Bernard"


def test_search_query_file_and_its_errors(clarifai_server, zoo, tmp_path):  # noqa: F811
    (tmp_path / "rex.jpg").write_bytes(encoded(scene(10)))
    query = tmp_path / "query.yaml"
    query.write_text("concept: dog\ntype: image\nlike: rex.jpg\ntop-k: 5\n"
                     "filters:\n  - metadata: {vet: {ok: true}}\n")
    hits = json_hits(run(clarifai_server, zoo, "search", "--json", "--query", str(query)))
    assert [h["id"] for h in hits] == ["dog1"]
    # Options beside --query add to it.
    more = json_hits(run(clarifai_server, zoo, "search", "--json", "--query", str(query),
                         "--dataset", "test"))
    assert more == []
    query.write_text("concept: dog\nbreed: pug\n")
    bad = run(clarifai_server, zoo, "search", "--query", str(query))
    assert bad.exit_code != 0 and f"{query}: unknown key 'breed'" in bad.output
    query.write_text("concept: [dog\n")
    broken = run(clarifai_server, zoo, "search", "--query", str(query))
    assert broken.exit_code != 0 and f"{query}:2: not valid YAML" in broken.output
    wrong = run(clarifai_server, zoo, "search", "--concept", "dog", "--near", "40,-29")
    assert wrong.exit_code != 0 and "near and within_km go together" in wrong.output


def test_export_the_hits_of_a_search_and_read_them_back(clarifai_server, zoo, tmp_path):  # noqa: F811
    out = tmp_path / "dogs.csv"
    result = run(clarifai_server, zoo, "export", "--concept", "dog", "--type", "image",
                 "--to", str(out), "--format", "csv", "--no-progress")
    assert result.exit_code == 0, result.output
    records, problems = read_all(out, "csv")
    assert not problems and sorted(records) == ["dog1", "dog2"]
    assert {r.metadata["search"]["rank"] for r in records.values()} == {1, 2}
    assert records["dog1"].metadata["breed"] == "Saint Bernard"

    # Ranked: the export keeps the order, and each hit's score and rank.
    picture = tmp_path / "rex.png"
    picture.write_bytes(encoded(scene(10).resize((160, 120))))
    coco = tmp_path / "like-rex"
    ranked = run(clarifai_server, zoo, "export", "--like", str(picture), "--top-k", "3",
                 "--to", str(coco), "--format", "coco", "--no-progress")
    assert ranked.exit_code == 0, ranked.output
    back, problems = read_all(coco, "coco")
    assert not problems and len(back) == 3
    search = clarifai_connect.client.Search(
        user_id=zoo.user_id, app_id=zoo.app_id, base_url=clarifai_server.base_url,
        pat=clarifai_server.keys[0], top_k=3)
    expected = [h.input.id for h in search.hits(ranks=[{"image_bytes": picture.read_bytes()}])]
    # COCO names images by input id and numbers them in the order written: best first.
    written = sorted(back.values(), key=lambda r: r.metadata["coco"]["image_id"])
    assert [r.metadata["coco"]["file_name"].rsplit(".", 1)[0] for r in written] == expected
    assert expected[0] == "dog1"


def test_python_export_with_a_query(clarifai_server, zoo, tmp_path):  # noqa: F811
    report = clarifai_connect.export(
        f"{zoo.user_id}/{zoo.app_id}", str(tmp_path / "out.csv"), "csv",
        base_url=clarifai_server.base_url, pat=clarifai_server.keys[0],
        query={"like_text": "dog in the sun", "type": "text"})
    assert report.failed == 0 and "search" in report.source
    records, _ = read_all(tmp_path / "out.csv", "csv")
    ranks = {r.id: r.metadata["search"]["rank"] for r in records.values()}
    assert ranks == {"txt1": 1, "txt2": 2}
    scores = {r.id: r.metadata["search"]["score"] for r in records.values()}
    assert 1 >= scores["txt1"] > scores["txt2"] >= 0
    # With a query, a dataset is one more filter of it.
    report = clarifai_connect.export(
        f"{zoo.user_id}/{zoo.app_id}", str(tmp_path / "train.csv"), "csv", dataset="train",
        base_url=clarifai_server.base_url, pat=clarifai_server.keys[0],
        query={"not_concept": "cat"})
    records, _ = read_all(tmp_path / "train.csv", "csv")
    assert sorted(records) == ["dog1"] and report.failed == 0


def test_readable_query_form():
    query = load_query({"concept": ["dog", "cat,cow"], "not-concept": "bird",
                        "near": "46.5,7.9", "within_km": 10, "like_input": "a", "top_k": 3})
    assert query.filters[0] == {"concepts": [{"id": "dog", "value": 1},
                                             {"name": "dog", "value": 1}]}
    assert len(query.filters[1]["concepts"]) == 4 and query.filters[2]["negate"] is True
    assert query.filters[3] == {"geo_point": {"longitude": 7.9, "latitude": 46.5,
                                              "geo_limit": 10.0}}
    assert query.ranks == [{"input_id": "a"}] and query.top_k == 3
    assert SearchQuery().empty and not query.empty
    for bad, message in (({"top_k": 0}, "top_k must be 1"), ({"near": "x"}, "go together"),
                         ({"like": "/no/such.jpg"}, "cannot read"), ("nope.yaml", "cannot read"),
                         ({"filters": {}}, "must be a list")):
        with pytest.raises(ConfigError, match=message):
            load_query(bad)
