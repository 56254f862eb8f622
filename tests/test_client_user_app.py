"""User and App against the real local server: apps, datasets, concepts, URL-initialised
objects, pagination and typed errors."""

import uuid

import pytest
from clarifai_grpc.grpc.api.status import status_code_pb2 as codes

from clarifai_connect.client import App, Dataset, Inputs, Lister, User
from clarifai_connect.errors import ApiError, UserError


@pytest.fixture
def user(clarifai_server, clarifai_pat):
    # A user of its own (no apps yet): a key of that user.
    name = f"user-{uuid.uuid4().hex[:8]}"
    return User(name, base_url=clarifai_server.base_url,
                pat=clarifai_server.add_key(f"{name}:{uuid.uuid4().hex}"))


@pytest.fixture
def app(clarifai_server, clarifai_pat, clarifai_app):
    return App(user_id=clarifai_app.user_id, app_id=clarifai_app.app_id,
               base_url=clarifai_server.base_url, pat=clarifai_pat)


def test_user_app_lifecycle(user):
    created = user.create_app("first", description="my app")
    assert isinstance(created, App)
    assert (created.user_id, created.app_id) == (user.user_id, "first")
    got = user.app("first")
    assert got.description == "my app"  # proto fields read as attributes
    assert got.created_at.seconds > 0
    assert [a.id for a in user.list_apps()] == ["first"]
    user.delete_app("first")
    with pytest.raises(ApiError) as err:
        user.app("first")
    assert err.value.code == codes.CONN_DOES_NOT_EXIST
    assert err.value.method == "GetApp"
    assert err.value.request_id
    assert "first" in str(err.value)


def test_list_apps_pages_lazily(user):
    for i in range(7):
        user.create_app(f"app-{i}")
    assert [a.id for a in user.list_apps(page_no=2, per_page=3)] == ["app-3", "app-4", "app-5"]
    assert [a.id for a in user.list_apps(page_no=3, per_page=3)] == ["app-6"]
    assert list(user.list_apps(page_no=4, per_page=3)) == []
    assert len(list(user.list_apps(page_no=1))) == 7  # 16 per page by default
    user.full_listing_page_size = 2  # every page, 2 at a time: 4 pages + the empty one
    listing = user.list_apps()
    assert next(listing).id == "app-0"  # a generator: nothing more was asked yet
    assert [a.id for a in listing] == [f"app-{i}" for i in range(1, 7)]
    assert [a.id for a in user.list_apps(filter_by={"name": "app-5"})] == ["app-5"]
    with pytest.raises(UserError, match="unknown argument"):
        user.list_apps(filter_by={"colour": "red"})
    with pytest.raises(UserError, match="page_no"):
        user.list_apps(page_no=0)


def test_create_app_twice_is_an_api_error(user):
    user.create_app("dup")
    with pytest.raises(ApiError) as err:
        user.create_app("dup")
    assert err.value.code == codes.CONN_INVALID_REQUEST
    assert "dup" in err.value.details


def test_app_from_url(clarifai_server, clarifai_pat, clarifai_app):
    url = f"https://clarifai.com/{clarifai_app.user_id}/{clarifai_app.app_id}/"
    app = App(url=url, base_url=clarifai_server.base_url, pat=clarifai_pat)
    assert (app.user_id, app.app_id) == (clarifai_app.user_id, clarifai_app.app_id)
    assert list(app.list_datasets()) == []
    with pytest.raises(UserError, match="not both"):
        App(url=url, app_id="x", base_url=clarifai_server.base_url, pat=clarifai_pat)
    with pytest.raises(UserError, match="app_id"):
        App(user_id="u", base_url=clarifai_server.base_url, pat=clarifai_pat)


def test_datasets_of_an_app(app, clarifai_server, clarifai_pat):
    created = app.create_dataset("ds-1", description="first")
    assert isinstance(created, Dataset) and created.id == "ds-1"
    for i in range(2, 6):
        app.create_dataset(f"ds-{i}")
    got = app.dataset("ds-1")
    assert got.description == "first" and got.version is None
    assert [d.id for d in app.list_datasets()] == [f"ds-{i}" for i in range(1, 6)]
    assert [d.id for d in app.list_datasets(page_no=2, per_page=2)] == ["ds-3", "ds-4"]
    app.delete_dataset("ds-2")
    assert "ds-2" not in [d.id for d in app.list_datasets()]
    with pytest.raises(ApiError) as err:
        app.dataset("ds-2")
    assert err.value.code == codes.CONN_DOES_NOT_EXIST

    url = f"https://clarifai.com/{app.user_id}/{app.app_id}/datasets/ds-1/versions/v7"
    by_url = Dataset(url=url, base_url=clarifai_server.base_url, pat=clarifai_pat)
    assert (by_url.user_id, by_url.app_id, by_url.id, by_url.version.id) == \
        (app.user_id, app.app_id, "ds-1", "v7")
    with pytest.raises(UserError, match="dataset"):
        Dataset(url=f"https://clarifai.com/{app.user_id}/{app.app_id}/models/m",
                base_url=clarifai_server.base_url, pat=clarifai_pat)


def test_inputs_and_concepts_of_an_app(app):
    inputs = app.inputs()
    assert isinstance(inputs, Inputs) and (inputs.user_id, inputs.app_id) == \
        (app.user_id, app.app_id)
    inputs.upload_text("t1", "a cat", labels=["cat"])
    inputs.upload_text("t2", "a dog", labels=["dog", "pet"])
    assert sorted(c.id for c in app.list_concepts()) == ["cat", "dog", "pet"]
    assert len(list(app.list_concepts(page_no=1, per_page=2))) == 2


def test_lister_with_a_callable_endpoint(app):
    for i in range(5):
        app.create_dataset(f"d{i}")
    from clarifai_grpc.grpc.api import service_pb2

    calls = []

    def endpoint(request):
        calls.append(request.page)
        return app._call("ListDatasets", request)

    lister = Lister(page_size=2)
    lister.full_listing_page_size = 2
    ids = [d.id for d in lister.list_pages_generator(
        endpoint, service_pb2.ListDatasetsRequest, {"user_app_id": app.user_app_id})]
    assert ids == [f"d{i}" for i in range(5)]
    assert calls == [1, 2, 3, 4]  # three full pages, then the empty one ends it
    assert [d.id for d in lister.list_pages_generator(
        endpoint, service_pb2.ListDatasetsRequest, {"user_app_id": app.user_app_id},
        page_no=2)] == ["d2", "d3"]
