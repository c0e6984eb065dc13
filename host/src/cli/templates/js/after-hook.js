
export const {{object}} = {
  {{fn}}({{params}}) {
    count("{{hook}}", context);
  },
};
