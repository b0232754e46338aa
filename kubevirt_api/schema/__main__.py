"""Regenerate deploy/crds/ from the schema modules."""

from kubevirt_api.schema.render import write

if __name__ == "__main__":
    for path in write():
        print(path)
