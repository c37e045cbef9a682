/** Prints the GraphQL schema (SDL) that `influence serve` exposes. */
import "reflect-metadata";
import { printSchema } from "graphql";
import { influenceSchema } from "../src/graphql/schema.js";

console.log(printSchema(influenceSchema()));
