

class {{class}}(exports.{{class}}):
    def {{fn}}(self, {{params}}) -> None:
        count("{{hook}}", context)
