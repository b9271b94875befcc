"""Dataset-root resolution: explicit > $RECUR_DATA > ../shared/datasets > user cache."""

import pytest

from recur.data import paths
from recur.data.paths import data_root, dataset_folders, download_root, find_dataset


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No env var, a working dir without ../shared, no repo fallback, HOME in tmp."""
    work = tmp_path / "work" / "project"
    work.mkdir(parents=True)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.delenv(paths.ENV_VAR, raising=False)
    monkeypatch.chdir(work)
    monkeypatch.setattr(paths, "_REPO_ROOT", None)
    monkeypatch.setenv("HOME", str(home))
    return tmp_path


def test_explicit_root_wins_over_env(isolated, monkeypatch):
    monkeypatch.setenv(paths.ENV_VAR, str(isolated / "from_env"))
    assert data_root(isolated / "mine") == (isolated / "mine").resolve()


def test_env_var_wins_over_shared_folder(isolated, monkeypatch):
    (isolated / "work" / "shared" / "datasets").mkdir(parents=True)
    monkeypatch.setenv(paths.ENV_VAR, str(isolated / "from_env"))
    assert data_root() == (isolated / "from_env").resolve()


def test_shared_folder_relative_to_working_dir(isolated):
    shared = isolated / "work" / "shared" / "datasets"
    shared.mkdir(parents=True)
    assert data_root() == shared.resolve()


def test_shared_folder_relative_to_repo_checkout(isolated, monkeypatch):
    repo = isolated / "elsewhere" / "repo"
    repo.mkdir(parents=True)
    (repo / "pyproject.toml").write_text("")
    shared = isolated / "elsewhere" / "shared" / "datasets"
    shared.mkdir(parents=True)
    monkeypatch.setattr(paths, "_REPO_ROOT", repo)
    assert data_root() == shared.resolve()


def test_falls_back_to_user_cache(isolated):
    assert data_root() == isolated / "home" / ".cache" / "recur" / "datasets"


def test_empty_explicit_root_is_an_error():
    with pytest.raises(ValueError, match="non-empty"):
        data_root("")


def test_find_dataset_searches_every_root_in_order(isolated, monkeypatch):
    shared = isolated / "work" / "shared" / "datasets"
    (shared / "ptb").mkdir(parents=True)
    cache = isolated / "home" / ".cache" / "recur" / "datasets"
    (cache / "imdb").mkdir(parents=True)
    (cache / "ptb").mkdir(parents=True)
    assert find_dataset("ptb") == shared.resolve() / "ptb"
    assert find_dataset("imdb") == cache / "imdb"  # not in shared, found in the cache
    assert dataset_folders("ptb") == [shared.resolve() / "ptb", cache / "ptb"]
    assert find_dataset("conll2003") is None


def test_find_dataset_with_explicit_root_looks_nowhere_else(isolated):
    cache = isolated / "home" / ".cache" / "recur" / "datasets"
    (cache / "imdb").mkdir(parents=True)
    assert find_dataset("imdb", isolated / "empty") is None


@pytest.mark.parametrize("name", ["", "../imdb", "a/b", ".."])
def test_dataset_name_must_be_a_plain_folder_name(name):
    with pytest.raises(ValueError, match="plain folder name"):
        find_dataset(name)


def test_downloads_never_go_to_the_shared_folder(isolated):
    (isolated / "work" / "shared" / "datasets").mkdir(parents=True)
    assert download_root() == isolated / "home" / ".cache" / "recur" / "datasets"
    assert download_root(isolated / "x") == (isolated / "x").resolve()
