import { Field, Float, ID, Int, ObjectType } from "type-graphql";
import type { BuildProgress, WorkerThroughput } from "../jobs/distributed/status.js";

@ObjectType({ description: "Jobs of a distributed build queued so far, by status." })
export class BuildJobCounts {
  @Field(() => Int)
  total!: number;

  @Field(() => Int)
  done!: number;

  @Field(() => Int)
  running!: number;

  @Field(() => Int)
  queued!: number;

  @Field(() => Int, { description: "Jobs that failed on their last attempt (the build has failed)." })
  failed!: number;
}

@ObjectType({ description: "What one worker process has done for a build." })
export class BuildWorker implements WorkerThroughput {
  @Field(() => String, { description: "host:pid" })
  worker!: string;

  @Field(() => Int)
  jobsDone!: number;

  @Field(() => Int)
  sequences!: number;

  @Field(() => Float)
  tokens!: number;

  @Field(() => Float, { description: "Seconds spent in its finished jobs." })
  seconds!: number;

  @Field(() => Float, { description: "Tokens per second of job time (0 for jobs that process no tokens)." })
  tokensPerSecond!: number;
}

@ObjectType({ description: "A build planned with `influence build --distributed`, as its workers have left it." })
export class DistributedBuildInfo implements BuildProgress {
  @Field(() => ID)
  buildId!: number;

  @Field(() => String, { description: "running, completed or failed." })
  status!: BuildProgress["status"];

  @Field(() => String, { description: "Phase of the queued stage: factors, projection, vectors, hnsw or manifest." })
  phase!: string;

  @Field(() => Int)
  stage!: number;

  @Field(() => String, { description: "The shared folder the workers write." })
  outDir!: string;

  @Field(() => BuildJobCounts)
  jobs!: BuildJobCounts;

  @Field(() => [BuildWorker])
  workers!: BuildWorker[];

  @Field(() => Float, {
    nullable: true,
    description:
      "Estimated seconds until the queued stage is done (its unfinished jobs x the mean of its finished ones / its workers); null until one has finished.",
  })
  stageSecondsLeft!: number | null;

  @Field(() => String, { nullable: true, description: "Why the build failed: the failing job and its error." })
  error!: string | null;
}
