from layerkit.cache.explain import changed_files, differences, explain_miss


def test_first_build_has_no_record() -> None:
    assert explain_miss(None, {"instruction": "RUN x"}) == (
        "no earlier build of this step in the cache"
    )


def test_changed_file_is_named() -> None:
    old = {"instruction": "COPY . .", "files": {"app/main.py": "sha256:a", "b": "sha256:b"}}
    new = {"instruction": "COPY . .", "files": {"app/main.py": "sha256:c", "b": "sha256:b"}}
    assert explain_miss(old, new) == "app/main.py changed"


def test_many_files_are_summarised() -> None:
    old = {"files": {f"f{i}": "x" for i in range(6)}}
    new = {"files": {f"f{i}": "y" for i in range(6)}}
    assert explain_miss(old, new) == "f0, f1, f2 and 3 more changed"


def test_build_arg_change_shows_both_values() -> None:
    old = {"args": {"VERSION": "1.2"}}
    new = {"args": {"VERSION": "1.3"}}
    assert differences(old, new) == ["build-arg VERSION changed (1.2 → 1.3)"]


def test_parent_change_uses_its_label() -> None:
    old = {"parent": "k1", "parent_label": "step 5"}
    new = {"parent": "k2", "parent_label": "step 5"}
    assert explain_miss(old, new) == "step 5 changed"


def test_added_and_removed_files() -> None:
    assert changed_files({"a": "1"}, {"b": "2"}) == ["a", "b"]
    assert changed_files({"a": "1"}, {"a": "1"}) == []


def test_identical_inputs_blame_the_missing_result() -> None:
    inputs = {"instruction": "RUN true"}
    assert "no longer in the store" in explain_miss(inputs, dict(inputs))
