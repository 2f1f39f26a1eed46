"""chameleon: renders an HTML table with the Chameleon template engine (FunctionBench's chameleon).

As in FunctionBench, each invocation compiles the page template and renders a table of rows x
columns through it. Inputs (the request's name): "small" (100 x 10) and "large" (400 x 20); an
empty name means "small". Reply: "rendered <input> table: <rows>x<cols>, <bytes> bytes of
HTML, sha256 <prefix>".
"""
from chameleon import PageTemplate

from vhive_function import choose, digest, serve

TABLE_TEMPLATE = """\
<table xmlns="http://www.w3.org/1999/xhtml"
xmlns:tal="http://xml.zope.org/namespaces/tal">
<tr tal:repeat="row python: options['table']">
<td tal:repeat="c python: row.values()">
<span tal:define="d python: c + 1"
tal:attributes="class python: 'column-' + str(d)"
tal:content="python: d" />
</td>
</tr>
</table>"""

# rows, columns
INPUTS = {"small": (100, 10), "large": (400, 20)}


def handle(name: str) -> str:
    selector, (rows, cols) = choose("chameleon", INPUTS, name, default="small")
    template = PageTemplate(TABLE_TEMPLATE)
    table = [{str(col): row * cols + col for col in range(cols)} for row in range(rows)]
    html = template.render(options={"table": table}).encode()
    return f"rendered {selector} table: {rows}x{cols}, {len(html)} bytes of HTML, sha256 {digest(html)}"


if __name__ == "__main__":
    serve("chameleon", handle)
