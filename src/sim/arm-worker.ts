/**
 * Worker-thread entry that runs arms of a recipe on the simulator (see runArmsInParallel): the arms of an A/B are
 * independent, so each gets a thread and a core. Each message is a job; the thread answers with progress while it
 * runs, then a result or an error, and waits for the next.
 */
import { parentPort } from "node:worker_threads";
import { type ArmJob, type ArmMessage, runArmJob } from "./arm-jobs.ts";

const post = (m: ArmMessage) => parentPort!.postMessage(m);
parentPort!.on("message", (job: ArmJob) => void runArmJob(job, post));
