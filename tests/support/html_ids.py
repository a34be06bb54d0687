"""The attributes of every element of an HTML page that has an id: what tests read from the handout's pages
(data-* codes, links), never their sentences.

    import html_ids                     # tests/support on sys.path
    page = html_ids.Ids(text)
    page.attrs["password-page"]["href"]
"""

import html.parser


class Ids(html.parser.HTMLParser):
    """``attrs``: {element id: that element's attributes}."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.attrs = {}
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.attrs[attrs["id"]] = attrs
