"""The OASIS stix2-validator's verdict on each STIX object of a corpus (the oracle of
trilink's own checks): reads a JSON list of objects, prints a JSON list of
{"id", "valid", "errors"} in the same order. Default (not --strict) options: errors make an
object invalid, warnings ("SHOULD") do not, as at a TAXII server."""

import json
import sys

from stix2validator import ValidationOptions, validate_instance


def main():
    corpus = json.load(open(sys.argv[1]))
    options = ValidationOptions(version="2.1")
    out = []
    for obj in corpus:
        result = validate_instance(obj, options)
        out.append({"id": obj.get("id"), "valid": result.is_valid, "errors": [str(e) for e in result.errors]})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
