    fn {{fn}}(
        {{params}},
    ) -> Result<(), String> {
        count("{{hook}}", &context)
    }
