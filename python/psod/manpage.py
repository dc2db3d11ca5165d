"""The OPTIONS of psoworker-torch(1), in roff, from its argparse parser.

`python3 -m psod.manpage` prints them; the Makefile puts them into
docs/man/psoworker-torch.1.in, so the page cannot drift from the options.
"""
import argparse
import sys


def roff(text):
    text = str(text).replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text[:1] in (".", "'") else text


def options(parser):
    lines = []
    for act in parser._actions:
        if isinstance(act, argparse._HelpAction) or not act.option_strings:
            continue
        name = ", ".join(roff(s) for s in act.option_strings)
        takes = act.nargs != 0
        meta = act.metavar or (act.type.__name__.upper()[0] if act.type in (int, float)
                               else "NAME" if act.choices else "VALUE")
        if act.type is int:
            meta = "N"
        elif act.type is float:
            meta = "X"
        lines.append(".TP")
        lines.append(".B " + name + (" \\fI" + meta + "\\fR" if takes else ""))
        text = (roff(act.help.rstrip(".")) + "." if act.help
                else "As psoworker(1)'s option of that name.")
        if act.choices:
            shown = [roff(c) for c in act.choices if c != ""]
            text += " One of: " + ", ".join(shown) + "."
        if takes and act.default not in (None, "", argparse.SUPPRESS):
            text += " Default: \\fB" + roff(act.default) + "\\fR."
        lines.append(text)
    return "\n".join(lines) + "\n"


def main():
    from psod.worker import parser
    sys.stdout.write(options(parser()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
