    fn {{fn}}(
        {{params}},
    ) -> Decision {
        check(&draft.body)
    }
