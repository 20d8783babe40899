#!/usr/bin/env python3
"""Validate JSON instances against Strata's JSON Schemas, or check the schemas themselves.

Usage:
  python3 Tests/validate-json.py SCHEMAS_DIR < instances.ndjson
  python3 Tests/validate-json.py SCHEMAS_DIR --check-schemas

Validation mode reads NDJSON on stdin, one request per line:
  {"schema": "events/DatasetCreated.v1.json", "instance": {...}}
"schema" is a path below SCHEMAS_DIR or a schema's full "$id". Every *.json file under SCHEMAS_DIR is
loaded into one registry keyed by its "$id", so relative "$ref"s ("../common.json#/$defs/Column")
resolve; formats ("uuid", "date-time", ...) are checked. For each non-blank input line it prints one
JSON line:
  {"line": N, "valid": true}
  {"line": N, "valid": false, "errors": ["<JSON Pointer into the instance>: <message>", ...]}
  {"line": N, "error": "<why the line could not be validated>"}     (a usage error)
Exit status: 0 if every instance is valid, 1 if any is invalid, 2 on a usage error (bad arguments,
an unreadable schema, a line that is not a JSON object with "schema" and "instance", an unknown schema).

--check-schemas checks that every *.json under SCHEMAS_DIR parses, declares draft 2020-12, is a valid
2020-12 schema, has a unique "$id" matching its path (https://strata.dev/schemas/<path>), and that every
"$ref" resolves; and that SCHEMAS_DIR/openapi.yaml parses as YAML, says "openapi: 3.1.0", and that its
"$ref"s resolve (local ones within the document, relative ones to files beside it). It prints each
problem on stderr and exits 1 if there is any.

Needs jsonschema 4.18+ (with `referencing`); PyYAML only for --check-schemas.
"""

import argparse
import json
import sys
from pathlib import Path
from urllib.parse import urldefrag, urljoin

try:
    from jsonschema import Draft202012Validator, FormatChecker
    from jsonschema.exceptions import SchemaError
    from referencing import Registry, Resource
    from referencing.exceptions import Unresolvable
    from referencing.jsonschema import DRAFT202012
except ImportError as error:  # pragma: no cover - environment problem
    print(f"validate-json.py needs jsonschema >= 4.18 with referencing: {error}", file=sys.stderr)
    sys.exit(2)

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
ID_BASE = "https://strata.dev/schemas/"


class UsageError(Exception):
    pass


def json_pointer(path):
    """RFC 6901 JSON Pointer for a jsonschema error path ('' is the whole document)."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def leaf_errors(error):
    """An anyOf/oneOf failure says little ("... is not valid under any of the given schemas"). When all
    but one alternative fail only on the instance's type (say, the "null" of "X or null"), the errors of
    that one alternative say what is wrong; report those instead."""
    if error.validator in ("anyOf", "oneOf") and error.context:
        branches = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        candidates = [
            errors for errors in branches.values()
            if not (len(errors) == 1 and errors[0].validator == "type" and not errors[0].relative_path)
        ]
        if len(candidates) == 1:
            return [leaf for sub in candidates[0] for leaf in leaf_errors(sub)]
    return [error]


def schema_files(root):
    return sorted(p for p in root.rglob("*.json") if p.is_file())


def load_schemas(root):
    """Every schema under root: ({relative path: $id}, Registry). Raises UsageError on an unusable file."""
    by_path = {}
    resources = []
    for path in schema_files(root):
        relative = path.relative_to(root).as_posix()
        try:
            contents = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise UsageError(f"{relative}: not readable JSON: {error}")
        if not isinstance(contents, dict):
            raise UsageError(f"{relative}: a schema must be a JSON object")
        uri = contents.get("$id") or path.resolve().as_uri()
        by_path[relative] = uri
        resources.append((uri, Resource.from_contents(contents, default_specification=DRAFT202012)))
    return by_path, Registry().with_resources(resources)


def emit(out, result):
    # One line per answer, flushed, so a caller can feed lines and read answers as it goes.
    out.write(json.dumps(result) + "\n")
    out.flush()


def validate_stream(root, lines, out):
    by_path, registry = load_schemas(root)
    ids = set(by_path.values())
    validators = {}
    status = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            try:
                request = json.loads(line)
            except json.JSONDecodeError as error:
                raise UsageError(f"not JSON: {error}")
            if not isinstance(request, dict) or "schema" not in request or "instance" not in request:
                raise UsageError('expected an object with "schema" and "instance"')
            name = request["schema"]
            if not isinstance(name, str):
                raise UsageError('"schema" must be a string')
            uri = by_path.get(name[2:] if name.startswith("./") else name) or (name if name in ids else None)
            if uri is None:
                raise UsageError(f"unknown schema {name!r}")
            validator = validators.get(uri)
            if validator is None:
                schema = registry.contents(uri)
                validator = Draft202012Validator(schema, registry=registry, format_checker=FormatChecker())
                validators[uri] = validator
            errors = sorted(
                (leaf for error in validator.iter_errors(request["instance"]) for leaf in leaf_errors(error)),
                key=lambda e: (list(map(str, e.absolute_path)), e.message),
            )
        except UsageError as error:
            emit(out, {"line": number, "error": str(error)})
            status = 2
            continue
        except Unresolvable as error:
            emit(out, {"line": number, "error": f"unresolvable $ref {getattr(error, 'ref', '')!r}"})
            status = 2
            continue
        if errors:
            messages = [f"{json_pointer(e.absolute_path)}: {e.message}" for e in errors]
            emit(out, {"line": number, "valid": False, "errors": messages})
            status = max(status, 1)
        else:
            emit(out, {"line": number, "valid": True})
    return status


def refs_in(node, path=()):
    """Every ("$ref" value, JSON Pointer of the object holding it) in a document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value, json_pointer(path)
            elif key not in ("const", "enum", "examples", "example", "default"):
                yield from refs_in(value, path + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from refs_in(value, path + (index,))


def resolve_pointer(document, fragment):
    node = document
    if not fragment:
        return node
    if not fragment.startswith("/"):
        raise KeyError(fragment)
    for token in fragment[1:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(token)]
        else:
            node = node[token]
    return node


def check_schemas(root):
    problems = []
    files = schema_files(root)
    if not files:
        problems.append(f"{root}: no *.json schema files")
    documents = {}
    seen_ids = {}
    for path in files:
        relative = path.relative_to(root).as_posix()
        try:
            contents = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            problems.append(f"{relative}: not valid JSON: {error}")
            continue
        if not isinstance(contents, dict):
            problems.append(f"{relative}: not a JSON object")
            continue
        if contents.get("$schema") != DRAFT_2020_12:
            problems.append(f"{relative}: $schema is {contents.get('$schema')!r}, expected {DRAFT_2020_12!r}")
        try:
            Draft202012Validator.check_schema(contents)
        except SchemaError as error:
            where = json_pointer(error.absolute_path) or "/"
            problems.append(f"{relative}: not a valid 2020-12 schema at {where}: {error.message}")
        expected_id = ID_BASE + relative
        schema_id = contents.get("$id")
        if schema_id != expected_id:
            problems.append(f"{relative}: $id is {schema_id!r}, expected {expected_id!r}")
        if schema_id in seen_ids:
            problems.append(f"{relative}: $id {schema_id!r} is also the $id of {seen_ids[schema_id]}")
        elif schema_id:
            seen_ids[schema_id] = relative
        documents[relative] = contents

    # Every $ref must resolve, resolved against the $id of the file that holds it.
    if documents:
        registry = Registry().with_resources(
            (ID_BASE + relative, Resource.from_contents(contents, default_specification=DRAFT202012))
            for relative, contents in documents.items()
        )
        for relative, contents in documents.items():
            resolver = registry.resolver(base_uri=ID_BASE + relative)
            for ref, where in refs_in(contents):
                try:
                    resolver.lookup(ref)
                except Unresolvable:
                    problems.append(f"{relative}: $ref {ref!r} at {where or '/'} does not resolve")

    problems.extend(check_openapi(root, documents))
    return problems


def check_openapi(root, documents):
    path = root / "openapi.yaml"
    if not path.is_file():
        return [f"{path}: missing"]
    try:
        import yaml
    except ImportError:
        return ["openapi.yaml: PyYAML is not installed, cannot check it"]
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        return [f"openapi.yaml: not valid YAML: {error}"]
    if not isinstance(spec, dict):
        return ["openapi.yaml: not a YAML mapping"]
    problems = []
    if spec.get("openapi") != "3.1.0":
        problems.append(f"openapi.yaml: openapi is {spec.get('openapi')!r}, expected '3.1.0'")
    for key in ("info", "paths", "components"):
        if not isinstance(spec.get(key), dict):
            problems.append(f"openapi.yaml: missing or invalid {key!r}")
    for ref, where in refs_in(spec):
        target, fragment = urldefrag(ref)
        try:
            if not target:
                resolve_pointer(spec, fragment)
            else:
                relative = urljoin(ID_BASE, target)
                if not relative.startswith(ID_BASE) or relative[len(ID_BASE):] not in documents:
                    raise KeyError(target)
                resolve_pointer(documents[relative[len(ID_BASE):]], fragment)
        except (KeyError, IndexError, ValueError, TypeError):
            problems.append(f"openapi.yaml: $ref {ref!r} at {where or '/'} does not resolve")
    return problems


def main(argv):
    parser = argparse.ArgumentParser(
        description="Validate NDJSON instances from stdin against Strata's JSON Schemas, or check the schemas."
    )
    parser.add_argument("schemas", type=Path, help="the Schemas directory")
    parser.add_argument("--check-schemas", action="store_true", help="check the schema files and openapi.yaml")
    try:
        arguments = parser.parse_args(argv)
    except SystemExit as exit:
        return 2 if exit.code else 0
    root = arguments.schemas
    if not root.is_dir():
        print(f"{root}: not a directory", file=sys.stderr)
        return 2
    if arguments.check_schemas:
        problems = check_schemas(root)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            return 1
        print(f"ok: {len(schema_files(root))} schemas and openapi.yaml")
        return 0
    sys.stdin.reconfigure(encoding="utf-8")
    sys.stdout.reconfigure(encoding="utf-8")
    try:
        return validate_stream(root, sys.stdin, sys.stdout)
    except UsageError as error:
        print(str(error), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
