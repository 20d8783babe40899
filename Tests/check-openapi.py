#!/usr/bin/env python3
"""Checks the OpenAPI document a Strata server serves, for OpenAPIRouteTests.

Usage: check-openapi.py SERVED.yaml SERVED.json

Prints one JSON object: {"operations": [[method, path, security, parameters], ...], "problems": [...]}
where `security` is the list of scheme names the operation requires ([] when it needs none) and
`parameters` the [name, in] of each parameter it takes (its path item's included). Problems:
the YAML and JSON forms differ; a `$ref` leaves the document or points at nothing; the document is
not valid OpenAPI (openapi-spec-validator, when installed).
"""
import json
import sys

import yaml

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def refs(node, path=""):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield path, value
            else:
                yield from refs(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from refs(value, f"{path}/{index}")


def resolve(document, pointer):
    node = document
    for step in pointer.lstrip("#/").split("/"):
        step = step.replace("~1", "/").replace("~0", "~")
        node = node[int(step)] if isinstance(node, list) else node[step]
    return node


def main():
    served_yaml = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
    served_json = json.load(open(sys.argv[2], encoding="utf-8"))
    problems = []
    if served_yaml != served_json:
        problems.append("/openapi.yaml and /openapi.json describe different documents")
    for where, target in refs(served_yaml):
        if not target.startswith("#/"):
            problems.append(f"{where}: $ref {target} leaves the document")
            continue
        try:
            resolve(served_yaml, target)
        except (KeyError, IndexError, ValueError):
            problems.append(f"{where}: $ref {target} points at nothing")
    try:
        from openapi_spec_validator import validate

        validate(served_yaml)
    except ImportError:
        pass
    except Exception as error:  # noqa: BLE001 - any validation failure is a finding
        problems.append(f"not valid OpenAPI: {str(error).splitlines()[0]}")
    default_security = served_yaml.get("security", [])
    operations = []
    def parameter(node):
        return resolve(served_yaml, node["$ref"]) if "$ref" in node else node

    for path, item in served_yaml.get("paths", {}).items():
        shared = [parameter(p) for p in item.get("parameters", [])]
        for method, operation in item.items():
            if method.lower() not in METHODS:
                continue
            security = operation.get("security", default_security)
            schemes = sorted({name for requirement in security for name in requirement})
            parameters = shared + [parameter(p) for p in operation.get("parameters", [])]
            operations.append([method, path, schemes, [[p["name"], p["in"]] for p in parameters]])
    print(json.dumps({"operations": operations, "problems": problems}))


if __name__ == "__main__":
    main()
