# generated from tests/_async/__init__.py by unasync_build.py: do not edit, edit the source
