"""One-off helper kept for maintainers: fills missing French strings we know, then compiles catalogues.

    .venv/bin/python scripts/fill_fr.py
"""

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

FR = {
    "Neighbours helping neighbours": "Entre voisins, on s'entraide",
    "Latest from %(town)s": "Les dernières nouvelles de %(town)s",
    "Nothing has been posted yet.": "Rien n'a encore été publié.",
    "edited": "modifié",
    ("%(num)d follower", "%(num)d followers"): ("%(num)d abonné", "%(num)d abonnés"),
    "A fedineighbour instance: follow %(handle)s from Mastodon or any fediverse server.":
        "Une instance fedineighbour : suivez %(handle)s depuis Mastodon ou tout serveur du fédivers.",
}

for lang in ("fr", "en"):
    path = f"fedineighbour/locale/{lang}/LC_MESSAGES/messages.po"
    with open(path, "rb") as f:
        catalog = read_po(f, locale=lang)
    if lang == "fr":
        for message in catalog:
            if message.id and not any(message.string if isinstance(message.string, tuple) else [message.string]):
                value = FR.get(message.id, "")
                if isinstance(value, tuple):  # French has 3 CLDR plural forms (one, many, other)
                    value = value + (value[-1],) * (catalog.num_plurals - len(value))
                message.string = value
    with open(path, "wb") as f:
        write_po(f, catalog)
    with open(path[:-3] + ".mo", "wb") as f:
        write_mo(f, catalog)
with open("fedineighbour/locale/fr/LC_MESSAGES/messages.po", "rb") as f:
    missing = [m.id for m in read_po(f) if m.id and not m.string]
print("untranslated in fr:", missing)
