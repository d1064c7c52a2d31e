"""Tests for bulkshare.job: good job files load, bad ones name file, line and key."""

from __future__ import annotations

import hashlib
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bulkshare.errors import JobFileError
from bulkshare.job import ActionKind, Job, KeyLocator, Operation, PatchOp, Where, load_job
from bulkshare.plan import EffectKind, Plan, plan_task
from bulkshare.plan.change import DuplicateChange

HEADER = '[job]\nname = "test-job"\n\n'  # three lines, so operations start on line 4


def write(directory: Path, text: str, name: str = "job.toml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_text(directory: Path, text: str) -> Job:
    return load_job(write(directory, text))


def refused(directory: Path, text: str) -> JobFileError:
    path = write(directory, text)
    with pytest.raises(JobFileError) as caught:
        load_job(path)
    return caught.value


def assert_error(error: JobFileError, path: Path, line: int | None, key: str | None) -> None:
    assert (error.path, error.line, error.key) == (path, line, key)
    prefix = f"{path}:{line}:" if line is not None else f"{path}:"
    assert str(error).startswith(prefix + (f" {key}: " if key else " "))


# --- good files ----------------------------------------------------------------------------


def test_interface_example_loads(tmp_path: Path) -> None:
    """The job shown in INTERFACE.md loads into the expected Job."""
    path = write(
        tmp_path,
        """\
        [job]
        name = "disable-orphaned"
        description = "Disable enabled tasks whose owner is gone"
        max_changes = 500

        [[operations]]
        action = "disable"
        where.task_errors = ["ORPHAN", "OWNER_DISABLED"]
        where.enabled = true
        """,
    )
    job = load_job(str(path))
    assert job.name == "disable-orphaned"
    assert job.description == "Disable enabled tasks whose owner is gone"
    assert job.max_changes == 500
    assert job.path == path
    assert job.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    (op,) = job.operations
    assert (op.index, op.line, op.action) == (0, 6, ActionKind.DISABLE)
    assert op.where == Where(task_errors=frozenset({"ORPHAN", "OWNER_DISABLED"}), enabled=True)


def test_optional_job_keys_default(tmp_path: Path) -> None:
    """Without description and max_changes the Job has "" and None."""
    job = load_text(tmp_path, HEADER + '[[operations]]\naction = "delete"\nwhere.all = true\n')
    assert (job.description, job.max_changes) == ("", None)


def test_actions_without_extras(tmp_path: Path) -> None:
    """delete, disable, enable, execute and cancel load with no extra fields and their lines."""
    blocks = [
        f'[[operations]]\naction = "{name}"\nwhere.ids = "t{i}"\n\n'
        for i, name in enumerate(["delete", "disable", "enable", "execute", "cancel"])
    ]
    job = load_text(tmp_path, HEADER + "".join(blocks))
    assert [op.action.value for op in job.operations] == [
        "delete",
        "disable",
        "enable",
        "execute",
        "cancel",
    ]
    assert [op.line for op in job.operations] == [4, 8, 12, 16, 20]
    assert [op.index for op in job.operations] == [0, 1, 2, 3, 4]
    assert job.operations[3].where == Where(ids=frozenset({"t3"}))
    assert all(op.to is None and op.mapping is None and not op.tags for op in job.operations)


def test_reassign_owner_with_to_and_enable(tmp_path: Path) -> None:
    """reassign-owner with `to` and `enable = true` keeps both."""
    job = load_text(
        tmp_path,
        HEADER + '[[operations]]\naction = "reassign-owner"\nwhere.owner = "old"\n'
        'to = "new"\nenable = true\n',
    )
    (op,) = job.operations
    assert (op.action, op.to, op.mapping, op.enable) == (
        ActionKind.REASSIGN_OWNER,
        "new",
        None,
        True,
    )


def test_reassign_owner_merges_mapping_table_and_csv(tmp_path: Path) -> None:
    """`mapping` and `mapping_file` merge; the CSV may have a BOM, swapped columns, blank lines."""
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "owners.csv").write_bytes(
        b"\xef\xbb\xbfnew_owner,old_owner\r\nn2,o2\r\n\r\n n3 , o3 \r\nn1,o1\r\n"
    )
    job = load_text(
        tmp_path,
        HEADER + '[[operations]]\naction = "reassign-owner"\nwhere.all = true\n'
        'mapping_file = "maps/owners.csv"\n[operations.mapping]\no1 = "n1"\n"o.4" = "n4"\n',
    )
    (op,) = job.operations
    assert op.mapping == {"o1": "n1", "o.4": "n4", "o2": "n2", "o3": "n3"}
    assert op.to is None and op.enable is False


def test_tag_and_untag(tmp_path: Path) -> None:
    """tag and untag carry their tags in order, without duplicates."""
    job = load_text(
        tmp_path,
        HEADER + '[[operations]]\naction = "tag"\nwhere.all = true\ntags = ["a", "b", "a"]\n'
        '[[operations]]\naction = "untag"\nwhere.tags = "old"\ntags = ["old"]\n',
    )
    assert [(op.action, op.tags) for op in job.operations] == [
        (ActionKind.TAG, ("a", "b")),
        (ActionKind.UNTAG, ("old",)),
    ]


def test_patch_ops_inline_and_as_tables(tmp_path: Path) -> None:
    """patch ops load from an inline array and from [[operations.ops]] tables alike."""
    job = load_text(
        tmp_path,
        HEADER
        + """\
[[operations]]
action = "patch"
where.all = true
ops = [
  { op = "replace", path = "/description", value = "" },
  { op = "remove", path = "/bookmarkId" },
]

[[operations]]
action = "patch"
where.all = true
[[operations.ops]]
op = "replace"
path = "/transportChannels"
value = ["email"]
[[operations.ops]]
op = "replace"
path = "/scheduleOptions"
value = { timezone = "Europe/Paris", recurrence = ["RRULE:FREQ=DAILY"] }
""",
    )
    assert job.operations[0].ops == (
        PatchOp("replace", "/description", ""),
        PatchOp("remove", "/bookmarkId"),
    )
    assert job.operations[1].ops == (
        PatchOp("replace", "/transportChannels", ["email"]),
        PatchOp(
            "replace",
            "/scheduleOptions",
            {"timezone": "Europe/Paris", "recurrence": ["RRULE:FREQ=DAILY"]},
        ),
    )
    assert hash(job.operations[1]) == hash(job.operations[1])


@pytest.mark.parametrize(
    "where",
    [
        'where.owner = ["u1", "u2"]\nwhere.status = "FAILED"\n',
        '[operations.where]\nowner = ["u1", "u2"]\nstatus = "FAILED"\n',
        'where = { owner = ["u1", "u2"], status = "FAILED" }\n',
    ],
)
def test_where_styles_are_equivalent(tmp_path: Path, where: str) -> None:
    """Dotted keys, an [operations.where] table and an inline table give the same Where."""
    job = load_text(tmp_path, HEADER + '[[operations]]\naction = "delete"\n' + where)
    expected = Where(owner=frozenset({"u1", "u2"}), status=frozenset({"FAILED"}))
    assert job.operations[0].where == expected


def test_every_where_key_loads(tmp_path: Path) -> None:
    """Each where key becomes the matching Where field, single strings as one-item sets."""
    job = load_text(
        tmp_path,
        HEADER
        + """\
[[operations]]
action = "delete"
[operations.where]
all = true
ids = ["t1", "t2"]
owner = "u1"
owner_name = "Ann"
app_id = "a1"
type = ["chart-sharing", "template-sharing"]
status = "FAILED"
task_errors = ["ORPHAN", "EMAIL_DELIVERY_FAILURE"]
enabled = false
tags = "x"
name = ["Sales*", "[!T]est"]
not_viewed_for_days = 0
owner_status = ["deleted", "disabled"]
""",
    )
    assert job.operations[0].where == Where(
        all=True,
        ids=frozenset({"t1", "t2"}),
        owner=frozenset({"u1"}),
        owner_name=frozenset({"Ann"}),
        app_id=frozenset({"a1"}),
        type=frozenset({"chart-sharing", "template-sharing"}),
        status=frozenset({"FAILED"}),
        task_errors=frozenset({"ORPHAN", "EMAIL_DELIVERY_FAILURE"}),
        enabled=False,
        tags=frozenset({"x"}),
        name=("Sales*", "[!T]est"),
        not_viewed_for_days=0,
        owner_status=frozenset({"deleted", "disabled"}),
    )


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    """A job file saved with a UTF-8 BOM loads."""
    path = tmp_path / "job.toml"
    path.write_bytes(
        b"\xef\xbb\xbf"
        + (HEADER + '[[operations]]\naction = "delete"\nwhere.all = true\n').encode()
    )
    assert load_job(path).name == "test-job"


# --- errors: file level --------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    """A missing job file is a JobFileError without a line."""
    path = tmp_path / "nope.toml"
    with pytest.raises(JobFileError) as caught:
        load_job(path)
    assert_error(caught.value, path, None, None)
    assert str(caught.value) == f"{path}: cannot read: No such file or directory"


def test_non_utf8_names_the_line(tmp_path: Path) -> None:
    """A byte that is not UTF-8 is reported with its line and column."""
    path = tmp_path / "job.toml"
    path.write_bytes(b'[job]\nname = "x"\ndescription = "caf\xe9"\n')
    with pytest.raises(JobFileError) as caught:
        load_job(path)
    assert str(caught.value) == f"{path}:3: not valid UTF-8 (byte 0xe9 at column 19)"


def test_malformed_toml_names_the_line(tmp_path: Path) -> None:
    """tomllib's position becomes the error's line."""
    error = refused(tmp_path, HEADER + "[[operations]]\naction = delete\n")
    assert_error(error, tmp_path / "job.toml", 5, None)
    assert str(error).endswith(": invalid TOML: Invalid value (column 10)")


def test_malformed_toml_at_end_of_file(tmp_path: Path) -> None:
    """An error tomllib places at the end of the document gets the last line."""
    error = refused(tmp_path, '[job]\nname = "x"\ndescription = """never closed\n')
    assert_error(error, tmp_path / "job.toml", 3, None)
    assert error.message.endswith("(end of file)")


# --- errors: keys and types ----------------------------------------------------------------


def test_unknown_top_level_key(tmp_path: Path) -> None:
    """A misspelt top-level table is named, with a suggestion and the allowed keys."""
    error = refused(tmp_path, HEADER + '[[operation]]\naction = "delete"\n')
    assert str(error) == (
        f'{tmp_path / "job.toml"}:4: operation: unknown key "operation" '
        '(did you mean "operations"?); allowed: job, operations, copy'
    )


def test_unknown_job_key(tmp_path: Path) -> None:
    """An unknown key in [job] is named as job.<key> on its line."""
    error = refused(tmp_path, '[job]\nname = "x"\nmax_change = 5\n')
    assert_error(error, tmp_path / "job.toml", 3, "job.max_change")
    assert '(did you mean "max_changes"?)' in str(error)


def test_missing_job_table(tmp_path: Path) -> None:
    """A file without [job] is refused at line 1."""
    error = refused(tmp_path, '[[operations]]\naction = "delete"\nwhere.all = true\n')
    assert_error(error, tmp_path / "job.toml", 1, "job")


@pytest.mark.parametrize(
    ("where", "line"),
    [
        ('where.enabled = true\nwhere.ownr = "u1"\n', 11),
        ('[operations.where]\nenabled = true\nownr = "u1"\n', 12),
        ('where = { enabled = true, ownr = "u1" }\n', 10),
    ],
)
def test_unknown_where_key_names_line_and_key(tmp_path: Path, where: str, line: int) -> None:
    """An unknown where key is reported at its own line (inline tables: the `where` line)."""
    ops = (
        '[[operations]]\naction = "delete"\nwhere.all = true\n\n[[operations]]\naction = "delete"\n'
    )
    error = refused(tmp_path, HEADER + ops + where)
    allowed = (
        "all, ids, owner, owner_name, app_id, type, status, task_errors, enabled, tags, name, "
        "not_viewed_for_days, owner_status"
    )
    assert str(error) == (
        f'{tmp_path / "job.toml"}:{line}: operations[1].where.ownr: unknown key "ownr" '
        f'(did you mean "owner"?); allowed: {allowed}'
    )


def test_unknown_action_lists_valid_ones(tmp_path: Path) -> None:
    """An unknown action is refused with the valid actions listed."""
    error = refused(tmp_path, HEADER + '[[operations]]\nwhere.all = true\naction = "disabel"\n')
    assert str(error) == (
        f'{tmp_path / "job.toml"}:6: operations[0].action: unknown action "disabel" '
        '(did you mean "disable"?); valid: delete, disable, enable, reassign-owner, tag, untag, '
        "execute, cancel, patch"
    )


def test_missing_action(tmp_path: Path) -> None:
    """An operation without action is refused at its header line."""
    error = refused(tmp_path, HEADER + "[[operations]]\nwhere.all = true\n")
    assert_error(error, tmp_path / "job.toml", 4, "operations[0].action")


def test_extra_key_not_allowed_for_action(tmp_path: Path) -> None:
    """A key that belongs to another action is an unknown key for this one."""
    error = refused(
        tmp_path, HEADER + '[[operations]]\naction = "delete"\nwhere.all = true\ntags = ["x"]\n'
    )
    assert str(error) == (
        f'{tmp_path / "job.toml"}:7: operations[0].tags: unknown key "tags" for action "delete"; '
        "allowed: action, where"
    )


@pytest.mark.parametrize(
    ("text", "line", "key", "message"),
    [
        (
            HEADER + '[[operations]]\naction = "delete"\nwhere.enabled = "yes"\n',
            6,
            "operations[0].where.enabled",
            'expected a boolean (true or false), got string "yes"',
        ),
        (
            '[job]\nname = "x"\nmax_changes = "5"\n',
            3,
            "job.max_changes",
            'expected an integer, got string "5"',
        ),
        (
            '[job]\nname = "x"\nmax_changes = true\n',
            3,
            "job.max_changes",
            "expected an integer, got boolean true",
        ),
        ('[job]\nname = "x"\nmax_changes = 0\n', 3, "job.max_changes", "must be at least 1, got 0"),
        (
            '[job]\nname = "Nightly Job"\n',
            2,
            "job.name",
            "\"Nightly Job\" may only use a-z, 0-9 and '-'",
        ),
        (
            '[job]\ndescription = "x"\n',
            1,
            "job.name",
            'missing; give the job a name such as name = "disable-orphaned"',
        ),
        (
            HEADER + '[[operations]]\naction = "delete"\nwhere.not_viewed_for_days = -1\n',
            6,
            "operations[0].where.not_viewed_for_days",
            "must be at least 0, got -1",
        ),
        (
            HEADER + '[[operations]]\naction = "delete"\nwhere.all = false\n',
            6,
            "operations[0].where.all",
            "only `all = true` is meaningful; remove the key instead",
        ),
        (
            HEADER + '[[operations]]\naction = "delete"\nwhere.owner = []\n',
            6,
            "operations[0].where.owner",
            "empty array; give at least one value",
        ),
        (
            HEADER + '[[operations]]\naction = "delete"\nwhere.owner = ["u1", ""]\n',
            6,
            "operations[0].where.owner[1]",
            "empty string",
        ),
        (
            HEADER
            + '[[operations]]\naction = "delete"\n'
            + 'where.type = [\n  "chart-sharing",\n  "sheet-share",\n]\n',
            8,
            "operations[0].where.type[1]",
            'unknown task type "sheet-share" (did you mean "sheet-sharing"?); allowed: '
            "chart-monitoring, chart-sharing, sheet-sharing, template-sharing",
        ),
        (
            HEADER + '[[operations]]\naction = "delete"\nwhere.task_errors = "orphan"\n',
            6,
            "operations[0].where.task_errors",
            'unknown task error "orphan" (did you mean "ORPHAN"?)',
        ),
        (
            HEADER + '[[operations]]\naction = "delete"\nwhere.owner_status = "gone"\n',
            6,
            "operations[0].where.owner_status",
            'unknown owner status "gone"; allowed: active, invited, disabled, deleted, provisioned',
        ),
        (
            'operations = { action = "delete" }\n' + HEADER,
            1,
            "operations",
            "expected an array of tables ([[operations]]), got a table",
        ),
        (HEADER, 1, "operations", "missing; add at least one [[operations]] table"),
    ],
)
def test_wrong_values_are_refused(
    tmp_path: Path, text: str, line: int, key: str, message: str
) -> None:
    """Wrong types and values are named with their line and dotted key."""
    error = refused(tmp_path, text)
    assert_error(error, tmp_path / "job.toml", line, key)
    assert error.message.startswith(message)


def test_missing_where_is_refused(tmp_path: Path) -> None:
    """An operation without where is refused with a pointer to `where.all = true`."""
    error = refused(tmp_path, HEADER + '[[operations]]\naction = "delete"\n')
    assert_error(error, tmp_path / "job.toml", 4, "operations[0].where")
    assert "`where.all = true`" in error.message


def test_empty_where_is_refused(tmp_path: Path) -> None:
    """An empty where table is refused on its line, saying how to select every task on purpose."""
    error = refused(tmp_path, HEADER + '[[operations]]\naction = "delete"\nwhere = {}\n')
    assert str(error) == (
        f"{tmp_path / 'job.toml'}:6: operations[0].where: empty; an empty filter is refused "
        "(to select every task on purpose, use `where.all = true`)"
    )


@pytest.mark.parametrize(
    ("name", "key", "problem"),
    [
        ('["ok*", "[abc"]', "operations[0].where.name[1]", "'[' at position 1 is never closed"),
        ('"abc]"', "operations[0].where.name", "']' at position 4 closes no '['"),
        ('"[!]"', "operations[0].where.name", "'[' at position 1 is never closed"),
        ('""', "operations[0].where.name", "empty string"),
    ],
)
def test_bad_glob_is_refused(tmp_path: Path, name: str, key: str, problem: str) -> None:
    """Unbalanced brackets and empty globs are refused instead of matching literally."""
    error = refused(tmp_path, HEADER + f'[[operations]]\naction = "delete"\nwhere.name = {name}\n')
    assert_error(error, tmp_path / "job.toml", 6, key)
    assert error.message.endswith(problem)


def test_too_long_list_is_refused(tmp_path: Path) -> None:
    """A where list longer than 10,000 items is refused."""
    ids = ", ".join(f'"t{i}"' for i in range(10_001))
    error = refused(tmp_path, HEADER + f'[[operations]]\naction = "delete"\nwhere.ids = [{ids}]\n')
    assert_error(error, tmp_path / "job.toml", 6, "operations[0].where.ids")
    assert error.message == "10001 items; at most 10,000 are accepted"


# --- errors: action extras -----------------------------------------------------------------


def test_reassign_owner_without_to(tmp_path: Path) -> None:
    """reassign-owner without to, mapping or mapping_file names `to` at the operation header."""
    error = refused(
        tmp_path, HEADER + '[[operations]]\naction = "reassign-owner"\nwhere.all = true\n'
    )
    assert str(error) == (
        f"{tmp_path / 'job.toml'}:4: operations[0].to: reassign-owner needs the new owner: "
        '`to = "user-id"`, or `mapping` and/or `mapping_file`'
    )


def test_reassign_owner_with_to_and_mapping(tmp_path: Path) -> None:
    """`to` together with a mapping is ambiguous and refused."""
    error = refused(
        tmp_path,
        HEADER
        + '[[operations]]\naction = "reassign-owner"\nwhere.all = true\n'
        + 'to = "u2"\nmapping = { u1 = "u3" }\n',
    )
    assert_error(error, tmp_path / "job.toml", 7, "operations[0].to")


def test_reassign_owner_enable_must_be_bool(tmp_path: Path) -> None:
    """`enable` must be a boolean."""
    error = refused(
        tmp_path,
        HEADER
        + '[[operations]]\naction = "reassign-owner"\nwhere.all = true\nto = "u2"\nenable = 1\n',
    )
    assert_error(error, tmp_path / "job.toml", 8, "operations[0].enable")


def test_tag_needs_a_list_of_tags(tmp_path: Path) -> None:
    """tag without tags, or with a bare string, is refused."""
    base = HEADER + '[[operations]]\naction = "tag"\nwhere.all = true\n'
    assert_error(refused(tmp_path, base), tmp_path / "job.toml", 4, "operations[0].tags")
    error = refused(tmp_path, base + 'tags = "x"\n')
    assert_error(error, tmp_path / "job.toml", 7, "operations[0].tags")
    assert error.message == 'expected an array of strings, got string "x"'


@pytest.mark.parametrize(
    ("op", "key", "message"),
    [
        (
            '{ op = "replace", path = "/owner", value = "u1" }',
            "operations[0].ops[1].path",
            'unknown patch path "/owner" (did you mean "/ownerId"?)',
        ),
        (
            '{ op = "add", path = "/name", value = "x" }',
            "operations[0].ops[1].op",
            'unknown patch op "add"',
        ),
        (
            '{ op = "replace", path = "/name" }',
            "operations[0].ops[1].value",
            "replace needs a value for /name",
        ),
        (
            '{ op = "remove", path = "/tags", value = [] }',
            "operations[0].ops[1].value",
            "remove takes no value",
        ),
        (
            '{ op = "replace", path = "/enabled", value = "yes" }',
            "operations[0].ops[1].value",
            'expected a boolean (true or false), got string "yes"',
        ),
        (
            '{ op = "replace", path = "/transportChannels", value = ["fax"] }',
            "operations[0].ops[1].value[0]",
            '"fax" is not one of: email, sharepoint',
        ),
        (
            '{ op = "replace", path = "/scheduleOptions", value = { start = 2025-01-01 } }',
            "operations[0].ops[1].value",
            "TOML dates and times cannot be sent as JSON",
        ),
        (
            '{ op = "replace", path = "/description", value = "again" }',
            "operations[0].ops[1].path",
            "/description is already patched by an earlier op",
        ),
        (
            '{ op = "replace", path = "/name", value = "x", extra = 1 }',
            "operations[0].ops[1].extra",
            "unknown key",
        ),
    ],
)
def test_bad_patch_op_names_its_line(tmp_path: Path, op: str, key: str, message: str) -> None:
    """A bad entry of a multi-line ops array is reported on that entry's line."""
    text = (
        HEADER + '[[operations]]\naction = "patch"\nwhere.all = true\nops = [\n'
        f'  {{ op = "replace", path = "/description", value = "d" }},\n  {op},\n]\n'
    )
    error = refused(tmp_path, text)
    assert_error(error, tmp_path / "job.toml", 9, key)
    assert error.message.startswith(message)


def test_patch_without_ops(tmp_path: Path) -> None:
    """patch without ops, or with an empty list, is refused."""
    base = HEADER + '[[operations]]\naction = "patch"\nwhere.all = true\n'
    assert_error(refused(tmp_path, base), tmp_path / "job.toml", 4, "operations[0].ops")
    assert_error(
        refused(tmp_path, base + "ops = []\n"), tmp_path / "job.toml", 7, "operations[0].ops"
    )


# --- errors: mapping CSV -------------------------------------------------------------------


def csv_job(directory: Path, csv_bytes: bytes, extra: str = "") -> JobFileError:
    (directory / "owners.csv").write_bytes(csv_bytes)
    return refused(
        directory,
        HEADER + '[[operations]]\naction = "reassign-owner"\nwhere.all = true\n'
        f'mapping_file = "owners.csv"\n{extra}',
    )


@pytest.mark.parametrize(
    ("content", "line", "key", "message"),
    [
        (
            b"old,new\nu1,u2\n",
            1,
            None,
            "the header must be old_owner,new_owner; got 2 column(s) with other names",
        ),
        (b"", 1, None, "the header must be old_owner,new_owner; got an empty line"),
        (b"old_owner,new_owner\nu1,u2\nu3,\n", 3, "new_owner", "empty; a user id is needed"),
        (
            b"old_owner,new_owner\nu1,u2,u3\n",
            2,
            None,
            "expected 2 columns (old_owner,new_owner), got 3",
        ),
        (
            b"old_owner,new_owner\nu1,u2\n\nu1,u3\n",
            4,
            "old_owner",
            "this old owner maps to another new owner in ",
        ),
        (b'old_owner,new_owner\nu1,"u2\nu3",x\n', 3, None, "expected 2 columns"),
        (b"old_owner,new_owner\nu1,u\xff\n", 2, None, "not valid UTF-8 (at column 5)"),
    ],
)
def test_csv_errors_name_the_csv_and_its_line(
    tmp_path: Path, content: bytes, line: int, key: str | None, message: str
) -> None:
    """Errors inside the mapping CSV name the CSV file, its line and the column when known."""
    error = csv_job(tmp_path, content)
    assert_error(error, tmp_path / "owners.csv", line, key)
    assert error.message.startswith(message)


def test_csv_conflicting_with_mapping_table(tmp_path: Path) -> None:
    """An old owner mapped differently by `mapping` and by the CSV is refused at the CSV line."""
    error = csv_job(tmp_path, b"old_owner,new_owner\nu1,u3\n", extra='mapping = { u1 = "u2" }\n')
    assert str(error) == (
        f"{tmp_path / 'owners.csv'}:2: old_owner: this old owner maps to another new owner in "
        f"`mapping` of {tmp_path / 'job.toml'}"
    )


def test_missing_csv_is_reported_in_the_job_file(tmp_path: Path) -> None:
    """A mapping_file that cannot be read is named at its line in the job file."""
    error = refused(
        tmp_path,
        HEADER
        + '[[operations]]\naction = "reassign-owner"\nwhere.all = true\n'
        + 'mapping_file = "gone.csv"\n',
    )
    assert str(error) == (
        f"{tmp_path / 'job.toml'}:7: operations[0].mapping_file: "
        f"cannot read {tmp_path / 'gone.csv'}: No such file or directory"
    )


def test_mapping_value_must_be_a_string(tmp_path: Path) -> None:
    """A mapping entry whose new owner is not a string is named by its old owner."""
    error = refused(
        tmp_path,
        HEADER + '[[operations]]\naction = "reassign-owner"\nwhere.all = true\n'
        '[operations.mapping]\nu1 = "u2"\n"odd id" = 3\n',
    )
    assert_error(error, tmp_path / "job.toml", 9, 'operations[0].mapping."odd id"')


# --- KeyLocator ----------------------------------------------------------------------------

LOCATOR_TEXT = """\
[job]
name = "x"
description = '''
[[operations]]
fake = 1
'''

[[operations]]
action = "delete"
where.owner = "u1"

[[operations]]
action = "patch"
[operations.where]
"app_id" = "a"
ids = [
  "t1",  # first, with a comment
  "t2, still a string",
  "t3",
]
[[operations.ops]]
op = "remove"
[[operations.ops]]
op = "replace"
"""


@pytest.mark.parametrize(
    ("path", "line"),
    [
        (("job",), 1),
        (("job", "description"), 3),
        (("operations", 0), 8),
        (("operations", 0, "where", "owner"), 10),
        (("operations", 0, "where", "missing"), 8),
        (("operations", 1), 12),
        (("operations", 1, "where"), 14),
        (("operations", 1, "where", "app_id"), 15),
        (("operations", 1, "where", "ids", 0), 17),
        (("operations", 1, "where", "ids", 2), 19),
        (("operations", 1, "where", "ids", 9), 16),
        (("operations", 1, "ops", 1, "op"), 24),
        (("operations", 1, "ops", 0), 21),
        (("operations",), 8),
        (("operations", 5, "action"), 8),
        (("nothing",), 1),
    ],
)
def test_key_locator_finds_lines(path: tuple[str | int, ...], line: int) -> None:
    """The locator finds tables, dotted keys, array elements and falls back to parents."""
    assert KeyLocator(LOCATOR_TEXT).line_of(path) == line


def test_key_locator_handles_inline_operations_array() -> None:
    """Operations written as an inline array are located element by element."""
    text = 'operations = [\n  { action = "delete" },\n  { action = "cancel" },\n]\n[job]\n'
    assert KeyLocator(text).line_of(("operations", 1, "action")) == 3


def test_a_mapping_selects_only_the_owners_it_names(tmp_path: Path) -> None:
    """Tasks of owners a mapping does not name are neither changed nor counted as done."""
    from bulkshare.plan import TaskPlan

    path = tmp_path / "map.toml"
    path.write_text(
        '[job]\nname = "map"\n[[operations]]\naction = "reassign-owner"\nwhere.all = true\n'
        'mapping = { old = "new", same = "same" }\n'
    )
    ops = load_job(path).operations
    now = datetime.now(UTC)
    planned = plan_task({"id": "1", "owner": "old"}, ops, now)
    assert [c.after["owner"] for c in planned.changes] == ["new"] and planned.skipped == ()
    assert plan_task({"id": "2", "owner": "someone-else"}, ops, now) == TaskPlan()
    assert plan_task({"id": "3", "owner": "same"}, ops, now) == TaskPlan(
        skipped=("reassign-owner",)
    )


# --- plan_task: one request of each kind per task ------------------------------------------


def _op(index: int, action: ActionKind, **extra: object) -> Operation:
    """An operation selecting every task, built directly."""
    return Operation(index, index + 4, action, Where(all=True), **extra)  # type: ignore[arg-type]


_NOW = datetime(2026, 3, 1, tzinfo=UTC)
_TASK = {"id": "t1", "owner": "a", "enabled": True, "tags": ["x"], "statusCode": "VALID"}


def test_two_executes_of_one_task_are_one_request() -> None:
    """Two operations both executing a task make one execute, naming the action once."""
    ops = (_op(0, ActionKind.EXECUTE), _op(1, ActionKind.EXECUTE), _op(2, ActionKind.CANCEL))
    changes = plan_task(_TASK, ops, _NOW).changes
    assert [(c.method, c.path, c.actions) for c in changes] == [
        ("POST", "/v1/sharing-tasks/actions/execute", ("execute",)),
        ("POST", "/v1/sharing-tasks/t1/actions/cancel", ("cancel",)),
    ]


def test_patch_actions_merge_into_one_patch_owner_first() -> None:
    """disable, tag and reassign+enable make one PATCH, the owner written first."""
    ops = (
        _op(0, ActionKind.DISABLE),
        _op(1, ActionKind.TAG, tags=("y",)),
        _op(2, ActionKind.REASSIGN_OWNER, to="b", enable=True),
    )
    [change] = plan_task(_TASK, ops, _NOW).changes
    assert change.actions == ("disable", "tag", "reassign-owner")
    assert [op["path"] for op in change.body] == ["/ownerId", "/tags", "/enabled"]
    assert change.after == {"tags": ["x", "y"], "owner": "b", "enabled": True}


def test_enable_before_reassign_still_writes_the_owner_first() -> None:
    """enable then reassign-owner: /ownerId goes before /enabled, so the owner change cannot
    disable the task after the enable."""
    ops = (_op(0, ActionKind.ENABLE), _op(1, ActionKind.REASSIGN_OWNER, to="b"))
    [change] = plan_task(_TASK | {"enabled": False}, ops, _NOW).changes
    assert change.body == [
        {"op": "replace", "path": "/ownerId", "value": "b"},
        {"op": "replace", "path": "/enabled", "value": True},
    ]
    assert "enabled" not in change.expect  # written, so nothing is left to expect of it


_ACTIONS = st.sampled_from(
    [
        (ActionKind.EXECUTE, {}),
        (ActionKind.CANCEL, {}),
        (ActionKind.DISABLE, {}),
        (ActionKind.ENABLE, {}),
        (ActionKind.TAG, {"tags": ("y",)}),
        (ActionKind.UNTAG, {"tags": ("x",)}),
        (ActionKind.REASSIGN_OWNER, {"to": "b"}),
        (ActionKind.PATCH, {"ops": (PatchOp("replace", "/name", "n"),)}),
        (ActionKind.DELETE, {}),
    ]
)


@given(st.lists(_ACTIONS, min_size=1, max_size=12))
def test_any_job_plans_at_most_one_request_of_each_kind(
    actions: list[tuple[ActionKind, dict[str, object]]],
) -> None:
    """Whatever operations select a task, it gets at most one PATCH, DELETE, execute, cancel."""
    ops = tuple(_op(i, action, **extra) for i, (action, extra) in enumerate(actions))
    changes = plan_task(_TASK, ops, _NOW).changes
    kinds = [c.kind for c in changes]
    assert len(kinds) == len(set(kinds))
    if EffectKind.DELETE in kinds:
        assert kinds == [EffectKind.DELETE]
    plan = Plan("t", "j", "j.toml", "0" * 64, "2026-03-01T00:00:00Z")
    plan.add(changes)  # the plan's own guard agrees
    assert plan.changes == list(changes)


def test_plan_refuses_a_second_request_of_a_kind_for_a_task() -> None:
    """Plan.add is the bug guard: a task's second PATCH is refused, not planned."""
    change = plan_task(_TASK, (_op(0, ActionKind.DISABLE),), _NOW).changes[0]
    plan = Plan("t", "j", "j.toml", "0" * 64, "2026-03-01T00:00:00Z")
    plan.add([change])
    with pytest.raises(DuplicateChange, match='"t1" would get a second patch request'):
        plan.add([change])
    assert plan.changes == [change]
