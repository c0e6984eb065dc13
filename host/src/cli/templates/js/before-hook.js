
export const {{object}} = {
  {{fn}}({{params}}) {
    return check(draft.body);
  },
};
