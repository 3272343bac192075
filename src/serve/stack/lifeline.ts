/**
 * Set by `servelab up` on the processes it starts: they stop when its end of their stdin closes, so a stack whose
 * parent was killed (even with SIGKILL, which it cannot catch) does not live on.
 */
export const EXIT_WITH_PARENT_ENV = "SERVELAB_EXIT_WITH_PARENT";
