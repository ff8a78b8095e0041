"""Request handlers: parse, call one service function, render. No SQL here."""
