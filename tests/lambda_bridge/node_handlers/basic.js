// A SIP media application handler in the style of the public Chime samples (written for these tests).
let invocations = 0; // module state survives between invocations, as in a warm Lambda

exports.handler = async (event, context) => {
  invocations += 1;
  console.log('event', event.InvocationEventType, 'invocation', invocations);
  if (event.InvocationEventType === 'NEW_INBOUND_CALL') {
    return {
      SchemaVersion: '1.0',
      Actions: [{ Type: 'PlayAudio', Parameters: { AudioSource: { Type: 'S3', BucketName: 'prompts', Key: 'welcome.wav' } } }],
    };
  }
  return { SchemaVersion: '1.0', Actions: [], invocations, requestId: context.awsRequestId };
};
