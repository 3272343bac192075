/** Plain borders (no ANSI colours, so piped output stays clean) and no rules between body rows. */
export const TABLE_STYLE = {
  style: { head: [], border: [] },
  chars: { mid: "", "left-mid": "", "mid-mid": "", "right-mid": "" },
};
