// An ES module handler importing the runtime's SDKs (not bundled with it).
import AWS from 'aws-sdk';
import { S3Client } from '@aws-sdk/client-s3';

export const handler = async (event) => ({ esm: true, v2: AWS.VERSION, v3: typeof S3Client, echo: event.x });
