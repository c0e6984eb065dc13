

class {{class}}(exports.{{class}}):
    def {{fn}}(self, {{params}}) -> Decision:
        return check(draft.body)
